// A message that crashes its consumer on every delivery must not come back without end: on a classic queue
// (RabbitMQ 3.10 counts no deliveries there) the consumer counts the redeliveries it starts, and the one
// after MAX_DELIVERIES (4) dead-letters it. A command that only waited behind it is answered once.
import { encode } from '../../shared/src/messaging/codec.js';
import { eventually, query } from '../../shared/src/testkit/index.js';
import { EXCHANGES, QUEUES } from '../../shared/src/topology/topology.js';
import { HEADERS } from '../../shared/src/contracts/envelope.js';
import { reserveCommand, startSuiteSystem, type SuiteSystem } from './suite-system.js';

let suite: SuiteSystem;
beforeAll(async () => {
  suite = await startSuiteSystem('poison', { FAULT_INJECTION: 'true', LOG_LEVEL: 'info' }, { restartCrashed: true });
}, 120_000);
afterAll(async () => {
  await suite?.dispose();
});

/**
 * How many times the inventory service died (the supervisor restarted it each time). Its own log line about
 * crashing can die with it, so the supervisor's count is the one to trust.
 */
const inventoryCrashes = () => suite.isolated.system.crashes.get('inventory') ?? 0;

test('a command that crashes inventory on every delivery is dead-lettered on its 5th, and the one behind it is answered once', async () => {
  const poison = reserveCommand([{ sku: 'SKU-MUG', quantity: 1 }]);
  poison.headers = { [HEADERS.faultPlan]: JSON.stringify({ 'crash-every-delivery': true }) };
  const bystander = reserveCommand([{ sku: 'SKU-MUG', quantity: 1 }]);
  for (const envelope of [poison, bystander]) {
    const { content, options } = encode(envelope, 'poison-test');
    suite.channel.publish(EXCHANGES.commands, envelope.type, content, options);
  }
  await suite.channel.waitForConfirms();

  const dlq = QUEUES.deadLettersOf(QUEUES.commandsOf('inventory'));
  const letter = await eventually(async () => (await suite.channel.get(dlq, { noAck: true })) || undefined, { what: `the poison command in ${dlq}`, timeoutMs: 90_000, intervalMs: 100 });
  expect(letter.properties.messageId).toBe(poison.messageId);
  expect(letter.properties.headers![HEADERS.deadLetterReason]).toBe('delivery-limit');
  expect(String(letter.properties.headers![HEADERS.deadLetterError])).toMatch(/delivered 5 times/);
  // Started four times (each crashed the service), refused on the fifth delivery.
  expect(inventoryCrashes()).toBe(4);

  const answered = await eventually(
    async () => {
      const rows = await query(suite.isolated.environment.databaseUrl, 'select message_id from inventory.inbox where message_id = $1', [bystander.messageId]);
      return rows.length > 0 ? rows : undefined;
    },
    { what: 'the bystander in the inbox', timeoutMs: 30_000 },
  );
  expect(answered).toHaveLength(1);
  // Answering the bystander crashed nothing more.
  expect(inventoryCrashes()).toBe(4);
}, 150_000);

test('a command in hand while the broker connection drops again and again is bad luck, not poison: it is answered, not dead-lettered', async () => {
  const { admin, vhost, databaseUrl } = suite.isolated.environment;
  const dlq = QUEUES.deadLettersOf(QUEUES.commandsOf('inventory'));
  const lettersBefore = (await suite.channel.checkQueue(dlq)).messageCount;
  // Slow where a slow handler would be (in its transaction): each time, the connection drops before it commits.
  const slow = reserveCommand([{ sku: 'SKU-MUG', quantity: 1 }]);
  slow.headers = { [HEADERS.faultPlan]: JSON.stringify({ delay: 1_500 }) };
  const { content, options } = encode(slow, 'poison-test');
  suite.channel.publish(EXCHANGES.commands, slow.type, content, options);
  await suite.channel.waitForConfirms();
  // More drops than MAX_DELIVERIES (4): every one returns the command to the queue, redelivered.
  for (let drop = 0; drop < 6; drop++) {
    await new Promise((resolve) => setTimeout(resolve, 700));
    await admin.closeConnections(vhost, (name) => name.startsWith('inventory ')).catch(() => undefined);
  }
  await eventually(
    async () => ((await query(databaseUrl, 'select message_id from inventory.inbox where message_id = $1', [slow.messageId])).length > 0 ? true : undefined),
    { what: 'the slow command answered', timeoutMs: 60_000 },
  );
  expect((await suite.channel.checkQueue(dlq)).messageCount).toBe(lettersBefore);
}, 120_000);
