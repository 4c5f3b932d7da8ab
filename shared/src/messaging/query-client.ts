import type { AmqpConnectionManager, ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { z } from 'zod';
import type { QueryContract } from '../contracts/define.js';
import { newMessageId } from '../contracts/envelope.js';
import { EXCHANGES } from '../topology/topology.js';

/** The service did not answer in time (down, or busy). */
export class QueryTimeoutError extends Error {}

const REPLY_TO = 'amq.rabbitmq.reply-to';

/**
 * Read-only request/reply over RabbitMQ's direct reply-to (no reply queue to declare or clean up).
 * Only for queries: a lost answer just times out. Saga commands never go this way.
 */
export class QueryClient {
  private readonly channel: ChannelWrapper;
  private readonly pending = new Map<string, (response: { ok: boolean; data?: unknown; error?: string }) => void>();

  constructor(connection: AmqpConnectionManager, name: string, private readonly timeoutMs: number) {
    this.channel = connection.createChannel({
      name: `${name}-queries`,
      confirm: false,
      // Direct reply-to requires consuming on the channel that publishes the request.
      setup: (channel: Channel) => channel.consume(REPLY_TO, (message) => message && this.onResponse(message), { noAck: true }),
    });
  }

  async ask<P extends z.ZodType, R extends z.ZodType>(query: QueryContract<P, R>, payload: z.input<P>): Promise<z.output<R>> {
    const correlationId = newMessageId();
    const response = new Promise<{ ok: boolean; data?: unknown; error?: string }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        reject(new QueryTimeoutError(`the ${query.service} service did not answer ${query.type} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(correlationId, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
    });
    await this.channel.publish(EXCHANGES.queries, query.type, Buffer.from(JSON.stringify(payload)), {
      replyTo: REPLY_TO,
      correlationId,
      messageId: correlationId,
      type: query.type,
      contentType: 'application/json',
    });
    const answer = await response;
    if (!answer.ok) throw new Error(`${query.type} refused: ${answer.error}`);
    return query.result.parse(answer.data);
  }

  close(): Promise<void> {
    return this.channel.close();
  }

  private onResponse(message: ConsumeMessage): void {
    const resolve = this.pending.get(String(message.properties.correlationId));
    if (!resolve) return; // answered after we gave up
    this.pending.delete(String(message.properties.correlationId));
    try {
      resolve(JSON.parse(message.content.toString('utf8')));
    } catch {
      resolve({ ok: false, error: 'unreadable response' });
    }
  }
}
