// Least privilege on the broker, on the real RabbitMQ: each process logs in as a user of its own (the whole
// suite runs them so, which shows the rights are enough), and the broker refuses what is not its business.
// The rights are derived from the topology (shared/src/topology/access.ts).
import amqplib, { type ConfirmChannel } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { eventually } from '../../shared/src/testkit/index.js';
import { buildTopology, EXCHANGES, QUEUES } from '../../shared/src/topology/topology.js';
import { amqpUrl, processAmqpUrls } from './context.js';

const payment = processAmqpUrls.payment;

/**
 * What the broker says to `act` on a channel of `url`'s user: the error that closed the channel (a
 * refused publish closes it after the fact), or 'allowed'.
 */
async function attempt(url: string, act: (channel: ConfirmChannel) => Promise<unknown>): Promise<string> {
  const connection = await amqplib.connect(url);
  try {
    const channel = await connection.createConfirmChannel();
    const errors: string[] = [];
    channel.on('error', (error: Error) => errors.push(error.message));
    let closed = false;
    channel.on('close', () => (closed = true));
    await act(channel).catch((error: Error) => errors.push(error.message));
    await eventually(async () => closed || errors.some((error) => error.includes('ACCESS_REFUSED')) || undefined, { what: 'the channel closed', timeoutMs: 1_000 }).catch(() => undefined);
    return errors.find((error) => error.includes('ACCESS_REFUSED')) ?? errors[0] ?? 'allowed';
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** How RabbitMQ words a refusal of a queue, an exchange or a routing key on one (newer versions may name the right: `configure access to …`). */
const refused = (kind: 'queue' | 'exchange' | 'topic', name: string, exchange?: string) => {
  const quoted = (text: string) => `'${text.replace(/[.*]/g, '\\$&')}'`;
  return new RegExp(`ACCESS_REFUSED - (\\w+ )?access to ${kind} ${quoted(name)}${exchange ? ` in exchange ${quoted(exchange)}` : ''} in vhost`);
};

const publish = (exchange: string, routingKey: string) => async (channel: ConfirmChannel) => {
  channel.publish(exchange, routingKey, Buffer.from('{}'), { messageId: randomUUID(), contentType: 'application/json' });
  await channel.waitForConfirms();
};

describe('the payment user', () => {
  test('may not publish a command (order.cancel): only the orchestrator may', async () => {
    expect(await attempt(payment, publish(EXCHANGES.commands, 'order.cancel'))).toMatch(refused('exchange', EXCHANGES.commands));
  });

  test('may not publish order.cancel straight into order.commands through the default exchange either', async () => {
    expect(await attempt(payment, publish('', QUEUES.commandsOf('order')))).toMatch(refused('exchange', 'amq.default'));
  });

  test("may not publish another service's reply (topic permission on sagaflow.replies)", async () => {
    expect(await attempt(payment, publish(EXCHANGES.replies, 'inventory.reserve.succeeded'))).toMatch(refused('topic', 'inventory.reserve.succeeded', EXCHANGES.replies));
  });

  test('may not consume inventory.commands', async () => {
    const consume = (channel: ConfirmChannel) => channel.consume(QUEUES.commandsOf('inventory'), () => undefined);
    expect(await attempt(payment, consume)).toMatch(refused('queue', QUEUES.commandsOf('inventory')));
  });

  test.each([QUEUES.commandsOf('inventory'), 'payment.scratch'])('may not declare a queue that is not its own: %s', async (queue) => {
    const declare = (channel: ConfirmChannel) => channel.assertQueue(queue, { durable: true });
    expect(await attempt(payment, declare)).toMatch(refused('queue', queue));
  });

  test('may not bind its queue to other services\' commands (topic permission), nor delete a shared exchange', async () => {
    const bind = (channel: ConfirmChannel) => channel.bindQueue(QUEUES.commandsOf('payment'), EXCHANGES.commands, 'inventory.*');
    try {
      expect(await attempt(payment, bind)).toMatch(refused('topic', 'inventory.*', EXCHANGES.commands));
    } finally {
      // Were it allowed, the binding would steal inventory's commands from the rest of the run.
      await attempt(amqpUrl, (channel) => channel.unbindQueue(QUEUES.commandsOf('payment'), EXCHANGES.commands, 'inventory.*'));
    }
    expect(await attempt(payment, (channel) => channel.deleteExchange(EXCHANGES.commands))).toMatch(refused('exchange', EXCHANGES.commands));
  });

  test('may not read dead letters (the console, in the orchestrator, does)', async () => {
    const get = (channel: ConfirmChannel) => channel.get(QUEUES.deadLettersOf('payment.commands'));
    expect(await attempt(payment, get)).toMatch(refused('queue', QUEUES.deadLettersOf('payment.commands')));
  });

  test('may declare its own queue again (as on every reconnect): what is refused is not its own', async () => {
    const own = buildTopology().queues.find((queue) => queue.name === QUEUES.commandsOf('payment'))!;
    expect(await attempt(payment, (channel) => channel.assertQueue(own.name, { durable: true, arguments: own.arguments }))).toBe('allowed');
  });

  test('may not use the management API (no tags)', async () => {
    const { username, password } = new URL(payment);
    const managementUrl = new URL(process.env.RABBITMQ_MANAGEMENT_URL ?? 'http://127.0.0.1:15672');
    const response = await fetch(`${managementUrl.origin}/api/overview`, {
      headers: { authorization: `Basic ${Buffer.from(`${decodeURIComponent(username)}:${decodeURIComponent(password)}`).toString('base64')}` },
    });
    expect(response.status).toBe(401);
  });
});

test('the orchestrator user may not publish a reply (only services answer)', async () => {
  expect(await attempt(processAmqpUrls.orchestrator, publish(EXCHANGES.replies, 'payment.charge.succeeded'))).toMatch(refused('exchange', EXCHANGES.replies));
});

test("a service may not reach another's queues through its requeue exchange", async () => {
  expect(await attempt(processAmqpUrls.inventory, publish(EXCHANGES.requeueOf('payment'), QUEUES.commandsOf('payment')))).toMatch(refused('exchange', EXCHANGES.requeueOf('payment')));
});
