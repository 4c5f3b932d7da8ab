// Bounds: the inbox, delivery counts, expired idempotency keys and the history of sagas that ended for
// good are deleted by each process's sweeper once they are older than configured; the order itself stays
// readable, and the history of a saga that still needs a person (FAILED) is kept. Dead letters are never
// bounded by dropping: a .dlq past its alert depth is reported at error level instead.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, query } from '../../shared/src/testkit/index.js';
import { newCustomer } from './context.js';
import { startSuiteSystem, type SuiteSystem } from './suite-system.js';

const KEEP_SECONDS = 3;
const keepDays = String(KEEP_SECONDS / 86_400);
const SERVICES = ['order', 'inventory', 'payment', 'notification'];

let suite: SuiteSystem;
beforeAll(async () => {
  suite = await startSuiteSystem('retention', {
    INBOX_RETENTION_DAYS: keepDays,
    SAGA_HISTORY_RETENTION_DAYS: keepDays,
    RETENTION_SWEEP_INTERVAL_MS: '500',
    DEAD_LETTER_ALERT_DEPTH: '2',
    DEAD_LETTER_CHECK_MS: '200',
  });
}, 120_000);
afterAll(async () => {
  await suite?.dispose();
});

test(`rows older than ${KEEP_SECONDS} s are swept; the order stays, and a FAILED saga keeps its history`, async () => {
  const { client, environment } = suite.isolated;
  const db = environment.databaseUrl;
  const count = async (sql: string, params: unknown[]) => Number((await query(db, sql, params))[0].n);

  const orderId = await client.submit({ customerId: newCustomer(), items: [{ sku: 'SKU-MUG', quantity: 1 }], paymentMethod: 'tok_visa' });
  const done = await client.awaitFinal(orderId);
  expect(done.status).toBe('CONFIRMED');
  const sagaId = done.saga.id;
  for (const service of SERVICES) expect(await count(`select count(*) as n from "${service}".inbox where saga_id = $1`, [sagaId])).toBeGreaterThan(0);

  // Old rows that must go (an expired key, a stale delivery count) and a FAILED saga whose old history must stay.
  await query(db, `insert into orchestrator.idempotency_key (scope, key, request_hash, order_id, created_at, expires_at) values ('orders', 'old-key', 'h', $1, now() - interval '2 days', now() - interval '1 day')`, [randomUUID()]);
  await query(db, `insert into inventory.delivery (queue, message_id, deliveries, last_at) values ('inventory.commands', 'stale', 2, now() - interval '1 day')`);
  const failedSaga = randomUUID();
  await query(
    db,
    `insert into orchestrator.saga (id, type, business_key, correlation_id, status, state, fault_plan, timer_at, version, created_at, updated_at)
     select $2, type, $3, correlation_id, 'FAILED', state, fault_plan, null, version, created_at, updated_at from orchestrator.saga where id = $1`,
    [sagaId, failedSaga, randomUUID()],
  );
  await query(db, `insert into orchestrator.saga_history (saga_id, seq, at, events) select $2, seq, at - interval '1 day', events from orchestrator.saga_history where saga_id = $1`, [sagaId, failedSaga]);

  await eventually(
    async () => {
      const left = [
        ...(await Promise.all(SERVICES.map((service) => count(`select count(*) as n from "${service}".inbox where saga_id = $1`, [sagaId])))),
        await count('select count(*) as n from orchestrator.saga_history where saga_id = $1', [sagaId]),
        await count(`select count(*) as n from orchestrator.idempotency_key where key = 'old-key'`, []),
        await count(`select count(*) as n from inventory.delivery where message_id = 'stale'`, []),
      ];
      return left.every((n) => n === 0) ? true : undefined;
    },
    { what: 'the inbox rows, the history, the expired key and the stale count swept', timeoutMs: 30_000 },
  );

  expect(await count('select count(*) as n from orchestrator.saga_history where saga_id = $1', [failedSaga])).toBeGreaterThan(0);
  const order = await client.order(orderId);
  expect(order).toMatchObject({ orderId, status: 'CONFIRMED', saga: { id: sagaId, history: [] } });
}, 90_000);

test('a .dlq past its alert depth is named at error level, and nothing in it is dropped', async () => {
  const queue = 'payment.commands';
  for (let i = 0; i < 3; i++) suite.channel.sendToQueue(queue, Buffer.from('{}'), { messageId: randomUUID(), type: 'payment.charge', contentType: 'text/plain' });
  const alert = await eventually(
    async () =>
      readFileSync(join(suite.isolated.logDir, 'orchestrator.log'), 'utf8')
        .split('\n')
        .filter((line) => line.includes('dead letters piling up'))
        .map((line) => JSON.parse(line) as { level: number; queues: Record<string, number> })
        .find((entry) => entry.queues[`${queue}.dlq`] >= 3),
    { what: 'the alert in the orchestrator log' },
  );
  expect(alert.level).toBe(50); // error
  expect((await suite.channel.checkQueue(`${queue}.dlq`)).messageCount).toBe(3);
});
