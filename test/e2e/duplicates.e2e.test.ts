// RabbitMQ delivers at least once. Here the test itself delivers every command and every reply of real
// sagas twice more (same message ids, as a redelivery would), and sends compensations before and after
// the commands they undo: each effect must still happen exactly once.
import amqplib, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { decode, encode } from '../../shared/src/messaging/codec.js';
import type { Envelope } from '../../shared/src/contracts/envelope.js';
import { EXCHANGES } from '../../shared/src/topology/topology.js';
import { eventually, query, type OrderResponse } from '../../shared/src/testkit/index.js';
import { amqpUrl, api, newCustomer } from './context.js';

const databaseUrl = process.env.SAGAFLOW_DATABASE_URL!;
let connection: ChannelModel;
let channel: ConfirmChannel;
/** Every command the orchestrator published, as it went over the wire (a tap queue on the commands exchange). */
const published: Envelope[] = [];
beforeAll(async () => {
  connection = await amqplib.connect(amqpUrl);
  channel = await connection.createConfirmChannel();
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, EXCHANGES.commands, '#');
  await channel.consume(queue, (message) => message && published.push(decode(message)), { noAck: true });
});
afterAll(async () => {
  await connection.close();
});

async function publish(exchange: string, envelope: Envelope): Promise<void> {
  const { content, options } = encode(envelope, 'duplicates-test');
  channel.publish(exchange, envelope.type, content, options);
  await channel.waitForConfirms();
}

/** The commands the orchestrator sent for a saga (as its history lists them) and the replies the services sent. */
async function messagesOf(order: OrderResponse): Promise<{ commands: Envelope[]; replies: Envelope[] }> {
  const sent = new Set(order.saga.history.filter((event) => event.kind === 'command-sent').map((event) => event.messageId));
  const commands = await eventually(
    async () => {
      const unique = new Map(published.filter((command) => sent.has(command.messageId)).map((command) => [command.messageId, command]));
      return unique.size === sent.size ? [...unique.values()] : undefined;
    },
    { what: 'every command of the saga to reach the tap queue' },
  );
  const sagaId = order.saga.id;
  const replies = [];
  for (const schema of ['order', 'inventory', 'payment', 'notification']) {
    replies.push(...(await query<{ reply: Envelope }>(databaseUrl, `select reply from "${schema}".inbox where saga_id = $1`, [sagaId])));
  }
  return { commands, replies: replies.map((row) => row.reply) };
}

const ignoredReplies = (order: OrderResponse) => order.saga.history.filter((event) => event.kind === 'reply-ignored');

async function effectsOf(order: OrderResponse) {
  return {
    payments: await api.payments(order.orderId),
    notifications: await api.notifications(order.orderId),
    stock: await Promise.all(order.items.map((line) => api.stock(line.sku))),
    steps: (await api.order(order.orderId))!.saga.steps,
  };
}

describe('duplicate delivery', () => {
  test.each([
    ['a confirmed order', 'tok_visa', 'CONFIRMED'],
    ['a declined, compensated order', 'tok_chargeDeclined', 'CANCELLED'],
  ])('every command and reply of %s delivered twice more: no second effect, same replies', async (_name, paymentMethod, status) => {
    const orderId = await api.submit({ customerId: newCustomer(), items: [{ sku: 'SKU-TEE', quantity: 2 }], paymentMethod });
    const order = await api.awaitFinal(orderId);
    expect(order.status).toBe(status);
    const { commands, replies } = await messagesOf(order);
    expect(commands.length).toBe(order.saga.history.filter((event) => event.kind === 'command-sent').length);
    expect(replies).toHaveLength(commands.length);
    const before = await effectsOf(order);

    for (let copy = 0; copy < 2; copy++) {
      for (const command of commands) await publish(EXCHANGES.commands, command);
      for (const reply of replies) await publish(EXCHANGES.replies, reply);
    }

    // Each extra command makes its service send the stored reply again; every one of those is stale.
    const settled = await eventually(
      async () => {
        const current = (await api.order(orderId))!;
        return ignoredReplies(current).length >= 4 * commands.length ? current : undefined;
      },
      { what: 'every duplicate reply to be recorded as ignored' },
    );
    expect(ignoredReplies(settled)).toHaveLength(4 * commands.length);
    // The services answered with the very same replies (same message ids) they gave the first time.
    const replyIds = new Set(replies.map((reply) => reply.messageId));
    expect(ignoredReplies(settled).every((event) => replyIds.has(event.messageId!))).toBe(true);
    expect(settled.status).toBe(status);
    expect(await effectsOf(order)).toEqual(before);
  });
});

describe('business idempotency of compensations', () => {
  /** Commands for an order no saga runs, answered into an existing saga's history (where they are ignored). */
  let host: OrderResponse;
  beforeAll(async () => {
    host = await api.awaitFinal(await api.submit({ customerId: newCustomer(), items: [{ sku: 'SKU-TEE', quantity: 1 }], paymentMethod: 'tok_visa' }));
  });

  const command = (type: string, payload: unknown): Envelope => ({
    messageId: randomUUID(),
    type,
    sagaId: host.saga.id,
    correlationId: host.orderId,
    causationId: '',
    schemaVersion: 1,
    payload,
  });

  async function send(...envelopes: Envelope[]): Promise<void> {
    const seen = ignoredReplies((await api.order(host.orderId))!).length;
    for (const envelope of envelopes) await publish(EXCHANGES.commands, envelope);
    await eventually(async () => (ignoredReplies((await api.order(host.orderId))!).length >= seen + envelopes.length ? true : undefined), {
      what: 'the services to answer',
    });
  }

  test('a charge and a refund, each delivered twice: one charge, one refund of the same amount', async () => {
    const orderId = randomUUID();
    const charge = command('payment.charge', { orderId, customerId: 'c', amount: 1234, currency: 'EUR', paymentMethod: 'tok_visa' });
    const refund = command('payment.refund', { orderId });
    await send(charge, charge, { ...charge, messageId: randomUUID() });
    await send(refund, refund, { ...refund, messageId: randomUUID() });
    const payments = await api.payments(orderId);
    expect(payments.map((payment) => [payment.type, payment.amount])).toEqual([
      ['charge', 1234],
      ['refund', 1234],
    ]);
  });

  test('a refund that overtakes its charge: nothing is ever taken', async () => {
    const orderId = randomUUID();
    await send(command('payment.refund', { orderId }));
    await send(command('payment.charge', { orderId, customerId: 'c', amount: 500, currency: 'EUR', paymentMethod: 'tok_visa' }));
    expect(await api.payments(orderId)).toEqual([]);
  });

  test('a reserve delivered twice holds once; a release that overtakes its reserve leaves nothing held', async () => {
    const before = await api.stock('SKU-MUG');
    const twice = randomUUID();
    const reserve = command('inventory.reserve', { orderId: twice, items: [{ sku: 'SKU-MUG', quantity: 3 }] });
    await send(reserve, { ...reserve, messageId: randomUUID() });
    expect(await api.stock('SKU-MUG')).toMatchObject({ available: before.available - 3, reserved: before.reserved + 3 });
    await send(command('inventory.release', { orderId: twice }), command('inventory.release', { orderId: twice }));
    expect(await api.stock('SKU-MUG')).toMatchObject({ available: before.available, reserved: before.reserved });

    const overtaken = randomUUID();
    await send(command('inventory.release', { orderId: overtaken }));
    await send(command('inventory.reserve', { orderId: overtaken, items: [{ sku: 'SKU-MUG', quantity: 1 }] }));
    expect(await api.stock('SKU-MUG')).toMatchObject({ available: before.available, reserved: before.reserved });
  });

  test('a cancel that overtakes its create: the order is never created', async () => {
    const orderId = randomUUID();
    await send(command('order.cancel', { orderId, reason: 'timed out' }));
    await send(command('order.create', { orderId, customerId: 'c', items: [{ sku: 'SKU-MUG', quantity: 1 }] }));
    const [row] = await query<{ status: string }>(databaseUrl, 'select status from "order".orders where id = $1', [orderId]);
    expect(row.status).toBe('CANCELLED');
  });
});
