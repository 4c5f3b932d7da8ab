// A service takes the commands in hand as a batch: one transaction, and a failure undoes only its own
// command (the batch runs again with a savepoint per handler). A backlog is built while the inventory service
// is down, then it starts and must answer every command as it would one by one: a failure reply undoes only
// its own command's changes, a duplicate gets the same reply, a bad payload is dead-lettered, and the rest
// commit together. The orchestrator takes a backlog of replies the same way: one read and one statement for
// many sagas, each ending as it would alone.
import type { ConfirmChannel } from 'amqplib';
import { type Envelope, HEADERS } from '../../shared/src/contracts/envelope.js';
import { decode, encode } from '../../shared/src/messaging/codec.js';
import { EXCHANGES } from '../../shared/src/topology/topology.js';
import { eventually, type IsolatedSystem, query } from '../../shared/src/testkit/index.js';
import { reserveCommand, startSuiteSystem, type SuiteSystem } from './suite-system.js';

let suite: SuiteSystem;
let isolated: IsolatedSystem;
let channel: ConfirmChannel;

beforeAll(async () => {
  suite = await startSuiteSystem('batching', { FAULT_INJECTION: 'true' });
  ({ isolated, channel } = suite);
}, 120_000);

afterAll(() => suite?.dispose());

test('a backlog of commands is handled in few transactions, each command answered as if alone', async () => {
  const { system, environment, client } = isolated;
  const before = await client.stock('SKU-COFFEE');
  // The orchestrator is stopped too, so the replies stay in its queue for the test to read.
  await system.kill('orchestrator');
  await system.kill('inventory');

  const good = Array.from({ length: 20 }, () => reserveCommand([{ sku: 'SKU-COFFEE', quantity: 1 }]));
  // The first line fits, the second cannot: the whole command must leave no trace.
  const partly = () =>
    reserveCommand([
      { sku: 'SKU-COFFEE', quantity: 1 },
      { sku: 'SKU-SOLDOUT', quantity: 1 },
    ]);
  // Two of them in one backlog: each must undo only its own changes.
  const failing = [partly(), partly()];
  const invalid = reserveCommand([], { orderId: 'not-a-uuid' });
  const commands = [...good.slice(0, 10), failing[0], good[3], invalid, ...good.slice(10, 15), failing[1], ...good.slice(15)]; // good[3] twice
  for (const command of commands) {
    const { content, options } = encode(command, 'batching-test');
    channel.publish(EXCHANGES.commands, command.type, content, options);
  }
  await channel.waitForConfirms();
  await system.startProcess('inventory');

  // Every valid command answered once per delivery: 20 good + the 2 failing ones + the duplicate.
  const replies: Envelope[] = [];
  await eventually(
    async () => {
      for (let message = await channel.get('orchestrator.replies'); message; message = await channel.get('orchestrator.replies')) {
        replies.push(decode(message));
        channel.ack(message);
      }
      return replies.length >= 23;
    },
    { timeoutMs: 30_000, what: 'the replies of the backlog' },
  );
  const succeeded = replies.filter((reply) => reply.type === 'inventory.reserve.succeeded');
  expect(succeeded.map((reply) => reply.causationId).sort()).toEqual([...good.map((command) => command.messageId), good[3].messageId].sort());
  // The duplicate got the very same reply (same message id).
  const forDuplicate = succeeded.filter((reply) => reply.causationId === good[3].messageId);
  expect(new Set(forDuplicate.map((reply) => reply.messageId)).size).toBe(1);
  expect(
    replies
      .filter((reply) => reply.type === 'inventory.reserve.failed')
      .map((reply) => reply.causationId)
      .sort(),
  ).toEqual(failing.map((command) => command.messageId).sort());

  // Exactly the 20 good reservations hold stock: the failed commands' first lines were rolled back.
  await system.startProcess('orchestrator');
  expect((await client.stock('SKU-COFFEE')).available).toBe(before.available - 20);
  // The invalid one is in the .dlq, with its reason.
  await eventually(async () => (await channel.checkQueue('inventory.commands.dlq')).messageCount === 1, { timeoutMs: 10_000, what: 'the dead letter' });

  // Batched: far fewer transactions than commands (the inbox row's processed_at is its transaction's start).
  const [{ transactions }] = await query<{ transactions: number }>(
    environment.databaseUrl,
    `select count(distinct processed_at)::int as transactions from inventory.inbox where message_id = any($1::uuid[])`,
    [commands.map((command) => command.messageId)],
  );
  expect(transactions).toBeLessThan(10);
}, 120_000);

test('a slow handler does not hold its batch: the others are answered at once, the slow one alone, later', async () => {
  const { system } = isolated;
  await system.kill('orchestrator');
  await system.kill('inventory');
  // The slow one waits 3 s where a slow handler would, inside its transaction; it comes first in the backlog.
  const slow = { ...reserveCommand([{ sku: 'SKU-MUG', quantity: 1 }]), headers: { [HEADERS.faultPlan]: JSON.stringify({ delay: 3_000 }) } };
  const others = Array.from({ length: 12 }, () => reserveCommand([{ sku: 'SKU-MUG', quantity: 1 }]));
  for (const command of [slow, ...others]) {
    const { content, options } = encode(command, 'batching-test');
    channel.publish(EXCHANGES.commands, command.type, content, options);
  }
  await channel.waitForConfirms();
  await system.startProcess('inventory');
  const arrived: { causationId: string; at: number }[] = [];
  await eventually(
    async () => {
      for (let message = await channel.get('orchestrator.replies'); message; message = await channel.get('orchestrator.replies')) {
        arrived.push({ causationId: decode(message).causationId, at: Date.now() });
        channel.ack(message);
      }
      return arrived.length >= 13;
    },
    { timeoutMs: 30_000, intervalMs: 20, what: 'the replies of the backlog' },
  );
  const slowAt = arrived.find((reply) => reply.causationId === slow.messageId)!.at;
  const othersAt = arrived.filter((reply) => reply.causationId !== slow.messageId).map((reply) => reply.at);
  expect(arrived.map((reply) => reply.causationId).slice(-1)).toEqual([slow.messageId]);
  expect(slowAt - Math.max(...othersAt)).toBeGreaterThan(2_000);
  await system.startProcess('orchestrator');
}, 120_000);

test('the orchestrator applies a backlog of replies in batches, each saga ending as it would alone', async () => {
  const { system, environment, client } = isolated;
  // Commands wait while the order service is down; then it answers them all while the orchestrator is down.
  await system.kill('order');
  const orderIds: string[] = [];
  for (let i = 0; i < 12; i++) {
    orderIds.push(
      await client.submit({
        customerId: `batch-${i}`,
        items: [{ sku: 'SKU-COFFEE', quantity: 1 }],
        paymentMethod: i === 5 ? 'tok_chargeDeclined' : 'tok_visa',
        // Its reply comes twice, most likely in one batch: the second must be recorded and ignored.
        faults: i === 0 ? { 'order.create': { 'duplicate-reply': true } } : undefined,
      }),
    );
  }
  await eventually(async () => (await channel.checkQueue('order.commands')).messageCount === 12, { timeoutMs: 15_000, what: 'the create commands to wait' });
  await system.kill('orchestrator');
  await system.startProcess('order');
  await eventually(async () => (await channel.checkQueue('orchestrator.replies')).messageCount === 13, { timeoutMs: 15_000, what: 'the 13 replies to wait' });
  await system.startProcess('orchestrator');

  const finals = await Promise.all(orderIds.map((orderId) => client.awaitFinal(orderId)));
  expect(finals.map((order) => order.saga.status)).toEqual(orderIds.map((_, i) => (i === 5 ? 'COMPENSATED' : 'COMPLETED')));

  const sagaIds = finals.map((order) => order.saga.id);
  const [{ batches }] = await query<{ batches: number }>(
    environment.databaseUrl,
    `select count(distinct history.at)::int as batches from orchestrator.saga_history as history, jsonb_array_elements(history.events) as event
     where event->>'kind' = 'reply-applied' and event->>'step' = 'create-order' and history.saga_id = any($1::uuid[])`,
    [sagaIds],
  );
  // Replies applied in one batch share its clock reading; 12 replies came in a few batches.
  expect(batches).toBeLessThan(6);
  const history = finals[0].saga.history!.filter((event) => event.kind === 'reply-applied' || event.kind === 'reply-ignored');
  expect(history.filter((event) => event.kind === 'reply-ignored')).toHaveLength(1);
  expect(history.filter((event) => event.kind === 'reply-applied').map((event) => event.step)).toEqual([
    'create-order',
    'reserve-inventory',
    'charge-payment',
    'confirm-order',
    'notify',
  ]);
}, 120_000);
