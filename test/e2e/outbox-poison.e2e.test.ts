// A saga row is its own outbox: a command that can never be published (here a correlation id of 300
// characters, as an older version let in) must be set aside with its reason, not retried at the head of
// every timer poll, and must never hold back the commands due behind it.
import { randomUUID } from 'node:crypto';
import { eventually, query } from '../../shared/src/testkit/index.js';
import { QUEUES } from '../../shared/src/topology/topology.js';
import { newCustomer } from './context.js';
import { startSuiteSystem, type SuiteSystem } from './suite-system.js';

const GOOD = 500;
let suite: SuiteSystem;
beforeAll(async () => {
  suite = await startSuiteSystem('outbox_poison', { LOG_LEVEL: 'info' });
}, 120_000);
afterAll(async () => {
  await suite?.dispose();
});

test(`one poison row first and ${GOOD} good rows behind it: all ${GOOD} are published, the poison is set aside with its reason`, async () => {
  const { system, client, environment } = suite.isolated;
  const db = environment.databaseUrl;
  const orderCommands = QUEUES.commandsOf('order');

  // A template saga awaiting its first command, with nobody to answer it.
  await system.kill('order', 'SIGTERM');
  const templateOrder = await client.submit({ customerId: newCustomer(), items: [{ sku: 'SKU-MUG', quantity: 1 }], paymentMethod: 'tok_visa' });
  await eventually(async () => ((await suite.channel.checkQueue(orderCommands)).messageCount === 1 ? true : undefined), { what: 'the template command queued' });
  await system.kill('orchestrator', 'SIGTERM');
  await suite.channel.purgeQueue(orderCommands);

  // The outbox as the orchestrator will find it: the poison due first, then the good rows, none sent yet.
  const poisonOrder = randomUUID();
  const rows = [
    { id: randomUUID(), orderId: poisonOrder, messageId: randomUUID(), correlationId: 'c'.repeat(300), dueMinutesAgo: 60 },
    ...Array.from({ length: GOOD }, () => ({ id: randomUUID(), orderId: randomUUID(), messageId: randomUUID(), correlationId: randomUUID(), dueMinutesAgo: 30 })),
  ];
  await query(
    db,
    `insert into orchestrator.saga (id, type, business_key, correlation_id, status, state, fault_plan, timer_at, version, created_at, updated_at)
     select row.id, t.type, row.order_id, row.correlation_id, t.status,
       jsonb_set(jsonb_set(t.state, '{awaiting,messageId}', to_jsonb(row.message_id)), '{data,orderId}', to_jsonb(row.order_id)),
       t.fault_plan, now() - make_interval(mins => row.due), t.version, t.created_at, t.updated_at
     from orchestrator.saga t, jsonb_to_recordset($2::jsonb) as row(id uuid, order_id text, message_id text, correlation_id text, due int)
     where t.business_key = $1`,
    [templateOrder, JSON.stringify(rows.map((row) => ({ id: row.id, order_id: row.orderId, message_id: row.messageId, correlation_id: row.correlationId, due: row.dueMinutesAgo })))],
  );
  await query(db, 'delete from orchestrator.saga where business_key = $1', [templateOrder]);

  await system.startProcess('orchestrator');
  await eventually(async () => ((await suite.channel.checkQueue(orderCommands)).messageCount >= GOOD ? true : undefined), {
    what: `${GOOD} commands in ${orderCommands}`,
    timeoutMs: 30_000,
  });
  const published = new Set<string>();
  for (let message = await suite.channel.get(orderCommands, { noAck: true }); message; message = await suite.channel.get(orderCommands, { noAck: true })) {
    published.add(String(message.properties.messageId));
  }
  expect(published).toEqual(new Set(rows.slice(1).map((row) => row.messageId)));

  const poison = await eventually(async () => {
    const order = await client.order(poisonOrder);
    return order?.saga.setAside ? order : undefined;
  }, { what: 'the poison saga set aside' });
  expect(poison.saga.setAside).toMatchObject({ step: 'create-order', commandType: 'order.create', messageId: rows[0].messageId, reason: expect.stringMatching(/correlation id must be 1 to 128 printable ASCII characters \(it has 300\)/) });
  expect(poison.saga.history).toContainEqual(expect.objectContaining({ kind: 'command-set-aside', step: 'create-order', detail: expect.stringContaining('correlation id') }));
  expect(poison.status).toBe('PENDING');

  const listed = await client.fetch('/console/sagas?setAside=true').then((response) => response.json() as Promise<{ saga: { id: string } }[]>);
  expect(listed.map((saga) => saga.saga.id)).toEqual([rows[0].id]);

  // Set aside, it waits for a person: no timer, so no poll sends it again.
  const [row] = await query(db, 'select timer_at from orchestrator.saga where id = $1', [rows[0].id]);
  expect(row.timer_at === null || new Date(row.timer_at).getTime() > Date.now() + 60_000).toBe(true);
}, 120_000);
