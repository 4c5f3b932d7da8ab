// A message no handler can take must land in its queue's .dlq with the reason, and the consumer must
// keep going. Messages are published straight to each queue, as a broken or hostile producer would.
import type amqplib from 'amqplib';
import { randomUUID } from 'node:crypto';
import { HEADERS, SCHEMA_VERSION } from '../../shared/src/contracts/envelope.js';
import { COMMANDS, QUERIES } from '../../shared/src/contracts/index.js';
import { BrokerAdmin, eventually } from '../../shared/src/testkit/index.js';
import { buildTopology, QUEUES } from '../../shared/src/topology/topology.js';
import { api, newCustomer, vhost, openSuiteChannel, takeDeadLetter } from './context.js';

const broker = openSuiteChannel();

/** Publishes raw bytes to a queue; the headers default to a well-formed saga message. */
function publish(queue: string, content: string, properties: amqplib.Options.Publish = {}): string {
  const messageId = randomUUID();
  broker.channel.sendToQueue(queue, Buffer.from(content), {
    messageId,
    correlationId: randomUUID(),
    contentType: 'application/json',
    persistent: true,
    headers: { [HEADERS.sagaId]: randomUUID(), [HEADERS.schemaVersion]: SCHEMA_VERSION },
    ...properties,
  });
  return messageId;
}

const workQueues = buildTopology()
  .queues.filter((queue) => queue.role === 'work')
  .map((queue) => queue.name);

describe('dead letters', () => {
  test.each(workQueues)('%s: a body that is not JSON is dead-lettered as malformed, with where and why', async (queue) => {
    // A type the queue's consumer knows, so the body is what is wrong.
    const service = queue.split('.')[0];
    const known = [...(queue.endsWith('.queries') ? QUERIES : COMMANDS).values()].find((contract) => contract.service === service);
    const type = queue === QUEUES.replies ? 'inventory.reserve.succeeded' : known!.type;
    const messageId = publish(queue, '{not json', { type });
    const message = await takeDeadLetter(broker.channel, queue, messageId);
    const headers = message.properties.headers!;
    expect(headers[HEADERS.deadLetterReason]).toBe('malformed');
    expect(headers[HEADERS.originalQueue]).toBe(queue);
    expect(String(headers[HEADERS.deadLetterError]).length).toBeGreaterThan(0);
    expect(message.content.toString()).toBe('{not json');
  });

  test('a command with no handler is dead-lettered as unknown-type', async () => {
    const messageId = publish(QUEUES.commandsOf('inventory'), '{}', { type: 'inventory.teleport' });
    const message = await takeDeadLetter(broker.channel, QUEUES.commandsOf('inventory'), messageId);
    expect(message.properties.headers![HEADERS.deadLetterReason]).toBe('unknown-type');
  });

  test('a command whose payload breaks its contract is dead-lettered as invalid-payload, naming the field', async () => {
    const messageId = publish(QUEUES.commandsOf('payment'), JSON.stringify({ orderId: randomUUID(), customerId: 'c', amount: 12.5, currency: 'EUR', paymentMethod: 'tok_visa' }), {
      type: 'payment.charge',
    });
    const message = await takeDeadLetter(broker.channel, QUEUES.commandsOf('payment'), messageId);
    expect(message.properties.headers![HEADERS.deadLetterReason]).toBe('invalid-payload');
    expect(message.properties.headers![HEADERS.deadLetterError]).toMatch(/amount/);
  });

  test('a message without a saga id or message id is dead-lettered as malformed', async () => {
    const messageId = publish(QUEUES.commandsOf('order'), '{}', { type: 'order.create', headers: {} });
    const message = await takeDeadLetter(broker.channel, QUEUES.commandsOf('order'), messageId);
    expect(message.properties.headers![HEADERS.deadLetterReason]).toBe('malformed');
    expect(message.properties.headers![HEADERS.deadLetterError]).toMatch(/saga-id/);
  });

  test('after all that, every queue still has its consumer and orders still complete', async () => {
    const admin = new BrokerAdmin();
    // The management API refreshes queue statistics every few seconds.
    for (const queue of workQueues) {
      await eventually(async () => ((await admin.queue(vhost, queue)).consumers >= 1 ? true : undefined), { what: `a consumer on ${queue}` });
    }
    const orderId = await api.submit({ customerId: newCustomer(), items: [{ sku: 'SKU-TEE', quantity: 1 }], paymentMethod: 'tok_visa' });
    expect((await api.awaitFinal(orderId)).status).toBe('CONFIRMED');
  });
});
