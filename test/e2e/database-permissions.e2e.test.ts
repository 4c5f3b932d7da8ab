// Least privilege in PostgreSQL, on the real server: each process runs as a role of its own that owns its
// schema and reaches nothing else (the whole suite runs them so, migrations included).
import pg from 'pg';
import { processDatabaseUrls } from './context.js';

/** Runs statements as the inventory service's role: the rows, or the SQLSTATE it was refused with. */
async function asInventory(sql: string): Promise<{ rows: unknown[] } | { code: string; message: string }> {
  const client = new pg.Client({ connectionString: processDatabaseUrls.inventory });
  await client.connect();
  try {
    return { rows: (await client.query(sql)).rows };
  } catch (error) {
    const { code, message } = error as { code: string; message: string };
    return { code, message };
  } finally {
    await client.end();
  }
}

describe('the inventory role', () => {
  test.each([
    ['read', 'select * from payment.payment'],
    ['insert into', `insert into payment.voided_order (order_id) values ('00000000-0000-0000-0000-000000000000')`],
    ['update', 'update payment.payment set amount = 0'],
    ['delete from', 'delete from payment.payment'],
  ])('may not %s payment\'s tables (permission denied, 42501)', async (_what, sql) => {
    expect(await asInventory(sql)).toEqual({ code: '42501', message: 'permission denied for schema payment' });
  });

  test("may not read the orchestrator's sagas either", async () => {
    expect(await asInventory('select * from orchestrator.saga')).toEqual({ code: '42501', message: 'permission denied for schema orchestrator' });
  });

  test('may not create a schema, nor a table outside its own (the admin made its schema for it)', async () => {
    expect(await asInventory('create schema scratch')).toMatchObject({ code: '42501' });
    expect(await asInventory('create table public.scratch (id int)')).toMatchObject({ code: '42501' });
  });

  test('reads and writes its own tables, which it owns (its migrations created them)', async () => {
    const client = new pg.Client({ connectionString: processDatabaseUrls.inventory });
    await client.connect();
    try {
      await client.query('begin');
      const [before] = (await client.query(`select available from inventory.stock_item where sku = 'SKU-MUG'`)).rows;
      await client.query(`update inventory.stock_item set available = available + 1 where sku = 'SKU-MUG'`);
      await client.query(`insert into inventory.reservation (order_id, lines, status) values ('00000000-0000-0000-0000-000000000001', '[]', 'RELEASED')`);
      const [row] = (
        await client.query(`select current_user as role,
          (select tableowner from pg_tables where schemaname = 'inventory' and tablename = 'stock_item') as owner,
          (select count(*)::int from inventory.reservation where order_id = '00000000-0000-0000-0000-000000000001') as inserted,
          (select available from inventory.stock_item where sku = 'SKU-MUG') as available`)
      ).rows;
      expect(row).toEqual({ role: expect.stringMatching(/_inventory$/), owner: row.role, inserted: 1, available: before.available + 1 });
    } finally {
      await client.query('rollback');
      await client.end();
    }
  });
});
