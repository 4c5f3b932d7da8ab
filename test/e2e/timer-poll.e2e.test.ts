// The timer poll's cost does not grow with the backlog: with 50,000 sagas waiting on far timers, a tick's
// statement reads only the due rows, through the index on the timers of running sagas. On a system of the
// suite's own (its orchestrator polls meanwhile; the far timers never concern it).
import { randomUUID } from 'node:crypto';
import { CLAIM_DUE } from '../../orchestrator/src/saga-engine/saga-repository.js';
import { query } from '../../shared/src/testkit/index.js';
import { type SuiteSystem, startSuiteSystem } from './suite-system.js';
import pg from 'pg';

let suite: SuiteSystem;
beforeAll(async () => {
  suite = await startSuiteSystem('timer-poll', {});
}, 120_000);
afterAll(async () => {
  await suite?.dispose();
}, 60_000);

test('with 50,000 sagas waiting on far timers, a tick reads only the due rows', async () => {
  const db = suite.isolated.environment.databaseUrl;
  const state = { status: 'RUNNING', data: {}, steps: [], awaiting: null, failureReason: null, deadlineAt: null };
  await query(
    db,
    `insert into orchestrator.saga (id, type, business_key, correlation_id, status, state, timer_at, version, created_at, updated_at)
     select gen_random_uuid(), 'order', 'far-' || n, 'far-' || n, 'RUNNING', $1::jsonb, now() + interval '1 day' + make_interval(secs => n), 1, now(), now()
     from generate_series(1, 50000) as n`,
    [JSON.stringify(state)],
  );
  await query(db, 'analyze orchestrator.saga');
  // Three due sagas, seen only by this transaction (the running orchestrator must not fire them).
  const client = new pg.Client({ connectionString: db });
  await client.connect();
  try {
    await client.query('begin');
    for (let i = 0; i < 3; i++) {
      await client.query(
        `insert into orchestrator.saga (id, type, business_key, correlation_id, status, state, timer_at, version, created_at, updated_at)
         values ($1, 'order', $2, $2, 'RUNNING', $3::jsonb, now() - interval '1 second', 1, now(), now())`,
        [randomUUID(), `due-${i}`, JSON.stringify(state)],
      );
    }
    const claim = CLAIM_DUE.text.replace('$1', '50').replace('$2', 'now()');
    const { rows } = await client.query(`explain (analyze, buffers, format json) ${claim}`);
    const plan = rows[0]['QUERY PLAN'][0];
    const text = await client.query(`explain (analyze, buffers, costs off) ${claim}`);
    console.info(`the timer poll's claim with 50,000 far timers and 3 due:\n${text.rows.map((row) => row['QUERY PLAN']).join('\n')}`);
    const nodes: any[] = [];
    const walk = (node: any) => (nodes.push(node), (node.Plans ?? []).forEach(walk));
    walk(plan.Plan);
    const scan = nodes.find((node) => node['Relation Name'] === 'saga');
    expect(scan).toMatchObject({ 'Node Type': 'Index Scan', 'Index Name': 'saga_timer_idx', 'Actual Rows': 3 });
    // Only the due rows were read: no filter threw thousands away, and a handful of pages were touched.
    expect(scan['Rows Removed by Filter'] ?? 0).toBe(0);
    expect(scan['Shared Hit Blocks'] + scan['Shared Read Blocks']).toBeLessThan(20);
    await client.query('rollback');
  } finally {
    await client.end();
  }
}, 180_000);
