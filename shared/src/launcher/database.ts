import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { redact } from '../messaging/connection.js';
import { DependencyUnreachableError } from '../runtime/preflight.js';
import { PROCESSES, type ProcessName } from './processes.js';

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** Creates the database named in `databaseUrl` when it does not exist yet (connecting to `postgres`). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect().catch((error: Error) => {
    throw new DependencyUnreachableError(`PostgreSQL is not reachable at ${redact(databaseUrl)} (${error.message}). Start it or set DATABASE_URL.`);
  });
  try {
    const exists = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (exists.rowCount === 0) await client.query(`create database ${ident(name)}`);
  } finally {
    await client.end();
  }
}

/** Drops a database, closing its connections first. */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(`drop database if exists ${ident(name)} with (force)`);
  } finally {
    await client.end();
  }
}

/** A process's PostgreSQL role and the one schema it owns. */
export interface DatabaseRole {
  role: string;
  schema: string;
}

/**
 * The statements that give each role its own schema and nothing else; idempotent, run as a superuser
 * (or the database's owner with CREATEROLE). `password(role)` is the SQL for a role's password: a literal,
 * or a psql variable in the file docker compose runs (postgres/provision.sql, exported from here).
 */
export function databaseRoleStatements<R extends DatabaseRole>(database: string, roles: R[], password: (role: R) => string): string[] {
  return [
    // Every role may connect to a new database and create temporary tables in it, unless revoked.
    `revoke all on database ${ident(database)} from public`,
    ...roles.flatMap((entry) => {
      const { role, schema } = entry;
      return [
        `do $$ begin create role ${ident(role)}; exception when duplicate_object then null; end $$`,
        `alter role ${ident(role)} with login nosuperuser nocreatedb nocreaterole noinherit password ${password(entry)}`,
        `grant connect on database ${ident(database)} to ${ident(role)}`,
        // Made by the admin, owned by the role: its migrations run as the role, which needs no right on the database itself.
        `create schema if not exists ${ident(schema)} authorization ${ident(role)}`,
        `alter schema ${ident(schema)} owner to ${ident(role)}`,
        // Tables a superuser migrated before the role existed pass to it (their indexes and sequences follow).
        `do $$ declare t record; begin for t in select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace ` +
          `where n.nspname = ${literal(schema)} and c.relkind in ('r', 'p') and c.relowner <> (select oid from pg_roles where rolname = ${literal(role)}) loop ` +
          `execute format('alter table %I.%I owner to %I', ${literal(schema)}, t.relname, ${literal(role)}); end loop; end $$`,
      ];
    }),
  ];
}

/** Creates (or updates) the roles in the database of `adminUrl`, with these passwords. */
export async function provisionDatabaseRoles(adminUrl: string, roles: (DatabaseRole & { password: string })[]): Promise<void> {
  const database = decodeURIComponent(new URL(adminUrl).pathname.slice(1));
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    for (const statement of databaseRoleStatements(database, roles, (role) => literal(role.password))) await client.query(statement);
  } finally {
    await client.end();
  }
}

/** Drops roles (after their database: nothing else of theirs is left). */
export async function dropDatabaseRoles(adminUrl: string, roles: string[]): Promise<void> {
  const url = new URL(adminUrl);
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    for (const role of roles) await client.query(`drop role if exists ${ident(role)}`);
  } finally {
    await client.end();
  }
}

/** A server URL (PostgreSQL or AMQP) logging in as `user` instead. */
export function withCredentials(serverUrl: string, user: string, password: string): string {
  const url = new URL(serverUrl);
  url.username = encodeURIComponent(user);
  url.password = encodeURIComponent(password);
  return url.toString();
}

/** Each process's role in `database`: `<database>_<process>` (its tail if longer than PostgreSQL's 63 bytes), owning the schema named after the process. */
export function processRoles(database: string): (DatabaseRole & { process: ProcessName })[] {
  return PROCESSES.map(({ name }) => ({ process: name, role: `${database.slice(-(62 - name.length))}_${name}`, schema: name }));
}

/**
 * Makes (or updates) every process's role in the database of `adminUrl`, with a new random password each;
 * the roles' names, and the URL each process then connects with.
 */
export async function provisionProcessRoles(adminUrl: string): Promise<{ roles: string[]; urls: Record<ProcessName, string> }> {
  const roles = processRoles(decodeURIComponent(new URL(adminUrl).pathname.slice(1))).map((role) => ({ ...role, password: randomBytes(18).toString('base64url') }));
  await provisionDatabaseRoles(adminUrl, roles);
  return {
    roles: roles.map(({ role }) => role),
    urls: Object.fromEntries(roles.map(({ process, role, password }) => [process, withCredentials(adminUrl, role, password)])) as Record<ProcessName, string>,
  };
}
