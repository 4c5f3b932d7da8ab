// What a person sees in the management UI: every queue durable, with its dead-letter exchange, and a
// .dlq beside it; a message nobody routes ends in sagaflow.unroutable instead of vanishing.
import amqplib from 'amqplib';
import { randomUUID } from 'node:crypto';
import { BrokerAdmin, eventually } from '../../shared/src/testkit/index.js';
import { buildTopology, EXCHANGES, QUEUES } from '../../shared/src/topology/topology.js';
import { amqpUrl, vhost } from './context.js';

const admin = new BrokerAdmin();

describe('broker topology as the system declared it', () => {
  test('every work queue is a durable queue of the configured type (classic by default) with its dead-letter exchange and a .dlq', async () => {
    const queues = new Map((await admin.queues(vhost)).map((queue) => [queue.name, queue]));
    const expected = buildTopology().queues;
    for (const { name } of expected) expect(queues.get(name)).toBeDefined();
    // All but each orchestrator's answers queue, which lives and dies with its connection.
    for (const queue of [...queues.values()].filter((candidate) => !candidate.name.startsWith('orchestrator.answers.'))) {
      expect(queue.durable).toBe(true);
      expect(queue.type).toBe('classic');
    }
    for (const { name } of expected.filter((queue) => queue.role === 'work')) {
      expect(queues.get(name)!.arguments['x-dead-letter-exchange']).toBe(EXCHANGES.deadLetters);
      expect(queues.get(name)!.arguments['x-dead-letter-routing-key']).toBe(name);
      expect(queues.has(`${name}.dlq`)).toBe(true);
    }
    // Delay queues hand their messages back to the work queue, through its owner's requeue exchange, when the delay is over.
    for (const { name, arguments: args } of expected.filter((queue) => queue.role === 'retry')) {
      expect(queues.get(name)!.arguments).toMatchObject({ 'x-dead-letter-exchange': args['x-dead-letter-exchange'], 'x-message-ttl': args['x-message-ttl'] });
    }
  });

  test('a command no queue is bound for lands in sagaflow.unroutable', async () => {
    const connection = await amqplib.connect(amqpUrl);
    try {
      const channel = await connection.createConfirmChannel();
      const messageId = randomUUID();
      channel.publish(EXCHANGES.commands, 'warehouse.ship', Buffer.from('{}'), { messageId, persistent: true });
      await channel.waitForConfirms();
      const message = await eventually(async () => (await channel.get(QUEUES.unroutable, { noAck: true })) || undefined, {
        what: 'the message in sagaflow.unroutable',
      });
      expect(message.properties.messageId).toBe(messageId);
      expect(message.fields.routingKey).toBe('warehouse.ship');
    } finally {
      await connection.close();
    }
  });
});
