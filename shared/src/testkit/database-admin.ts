import pg from 'pg';

/** Runs one query on its own connection (tests read the services' tables to look behind the API). */
export async function query<T extends pg.QueryResultRow = any>(databaseUrl: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Kills every other connection to the database (as a failover or an admin would); returns how many. */
export async function terminateBackends(databaseUrl: string): Promise<number> {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
  const rows = await query<{ terminated: boolean }>(
    databaseUrl,
    'select pg_terminate_backend(pid) as terminated from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
    [name],
  );
  return rows.filter((row) => row.terminated).length;
}
