// Opt-in bundling (BUNDLE_MAX > 1): commands or replies for one queue that are ready together travel as one
// AMQP message, and each part still runs, is answered and is dead-lettered alone, as its own message. The
// default (one message each) is what every other suite runs; their readers decode each message on its own.
import type { ConfirmChannel, GetMessage } from 'amqplib';
import { HEADERS, newMessageId, SCHEMA_VERSION, type Envelope } from '../../shared/src/contracts/envelope.js';
import { bundle, BUNDLE_TYPE, isBundle, unbundle } from '../../shared/src/messaging/bundle.js';
import { decode, encode } from '../../shared/src/messaging/codec.js';
import { EXCHANGES } from '../../shared/src/topology/topology.js';
import { eventually, type IsolatedSystem } from '../../shared/src/testkit/index.js';
import { reserveCommand, startSuiteSystem, type SuiteSystem } from './suite-system.js';

let suite: SuiteSystem;
let isolated: IsolatedSystem;
let channel: ConfirmChannel;
const TAP = `bundling-tap-${process.pid}`;

beforeAll(async () => {
  suite = await startSuiteSystem('bundling', { BUNDLE_MAX: '16' });
  ({ isolated, channel } = suite);
  // A copy of every command and reply, to see how they travelled.
  await channel.assertQueue(TAP, { exclusive: true });
  await channel.bindQueue(TAP, EXCHANGES.commands, '#');
  await channel.bindQueue(TAP, EXCHANGES.replies, '#');
}, 120_000);

afterAll(() => suite?.dispose());

/** Everything waiting in a queue, taken off it. */
async function drain(queue: string): Promise<GetMessage[]> {
  const messages: GetMessage[] = [];
  for (let message = await channel.get(queue); message; message = await channel.get(queue)) {
    messages.push(message);
    channel.ack(message);
  }
  return messages;
}

/** The messages as their consumers take them: a bundle's parts one by one. */
const parts = (messages: GetMessage[]) => messages.flatMap((message) => (isBundle(message) ? unbundle(message) : [message])).map((message) => decode(message));

test('a backlog travels in bundles, and every saga ends as it would alone', async () => {
  const { system, client } = isolated;
  const before = await client.stock('SKU-MUG');
  // The create commands wait while the order service is down; it then answers them as one batch, whose
  // replies go out together, and so do the commands the orchestrator sends next.
  await system.kill('order');
  const seen: GetMessage[] = [];
  const orderIds = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      client.submit({ customerId: `bundle-${i}`, items: [{ sku: 'SKU-MUG', quantity: 1 }], paymentMethod: i % 4 === 3 ? 'tok_chargeDeclined' : 'tok_visa' }),
    ),
  );
  // The create commands may travel bundled already (sagas started together go out together): count parts.
  const tapped = await eventually(
    async () => {
      seen.push(...(await drain(TAP)));
      return parts(seen).filter((envelope) => envelope.type === 'order.create').length === 12 && seen;
    },
    { timeoutMs: 15_000, what: 'the create commands to wait' },
  );
  await system.startProcess('order');

  const finals = await Promise.all(orderIds.map((orderId) => client.awaitFinal(orderId)));
  expect(finals.map((order) => order.saga.status)).toEqual(orderIds.map((_, i) => (i % 4 === 3 ? 'COMPENSATED' : 'COMPLETED')));
  // The 9 confirmed orders hold a mug each; the declined ones released theirs.
  expect((await client.stock('SKU-MUG')).available).toBe(before.available - 9);

  tapped.push(...(await drain(TAP)));
  const bundles = tapped.filter(isBundle);
  expect(bundles.length).toBeGreaterThan(0);
  expect(Math.max(...bundles.map((message) => Number(message.properties.headers?.['x-bundle-size'])))).toBeGreaterThan(1);
  // Every part is a complete message of its own: the 12 create commands and their 12 replies among them.
  const envelopes = parts(tapped);
  expect(envelopes.filter((envelope) => envelope.type === 'order.create')).toHaveLength(12);
  expect(envelopes.filter((envelope) => envelope.type === 'order.create.succeeded')).toHaveLength(12);
  expect(new Set(envelopes.map((envelope) => envelope.messageId)).size).toBe(envelopes.length);
}, 120_000);

const reserve = (payload?: unknown) => reserveCommand([{ sku: 'SKU-COFFEE', quantity: 1 }], payload);

test('a part that cannot be handled is dead-lettered alone, as its own message; its siblings are answered', async () => {
  const { system } = isolated;
  // The orchestrator is stopped, so the replies stay in its queue for the test to read.
  await system.kill('orchestrator');
  await drain(TAP);
  const good = [reserve(), reserve(), reserve()];
  const invalid = reserve({ orderId: 'not-a-uuid', items: [] });
  const { content, options } = bundle([good[0], invalid, good[1], good[2]].map((envelope) => encode(envelope, 'bundling-test')), 'bundling-test');
  channel.publish(EXCHANGES.commands, 'inventory.reserve', content, options);
  await channel.waitForConfirms();

  const replies: Envelope[] = [];
  await eventually(
    async () => {
      replies.push(...parts(await drain('orchestrator.replies')));
      return replies.length >= 3;
    },
    { timeoutMs: 20_000, what: 'the replies to the good parts' },
  );
  expect(replies.map((reply) => [reply.type, reply.causationId]).sort()).toEqual(good.map((command) => ['inventory.reserve.succeeded', command.messageId]).sort());

  const dead = await eventually(async () => (await drain('inventory.commands.dlq'))[0], { timeoutMs: 10_000, what: 'the dead letter' });
  expect(dead.properties.type).not.toBe(BUNDLE_TYPE);
  expect(dead.properties.messageId).toBe(invalid.messageId);
  expect(dead.properties.headers?.[HEADERS.deadLetterReason]).toBe('invalid-payload');
  expect(decode(dead).payload).toEqual(invalid.payload);
  expect((await channel.checkQueue('inventory.commands.dlq')).messageCount).toBe(0);
  expect((await channel.checkQueue('inventory.commands')).messageCount).toBe(0);
  await system.startProcess('orchestrator');
}, 60_000);
