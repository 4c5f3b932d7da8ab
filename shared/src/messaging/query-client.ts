import { randomUUID } from 'node:crypto';
import type { AmqpConnectionManager, ChannelWrapper } from 'amqp-connection-manager';
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { z } from 'zod';
import type { QueryContract } from '../contracts/define.js';
import { newMessageId } from '../contracts/envelope.js';
import { activeTraceCarrier } from '../observability/tracing.js';
import { EXCHANGES, QUEUES } from '../topology/topology.js';

/** The service did not answer in time (down, or busy). */
export class QueryTimeoutError extends Error {}

/**
 * Read-only request/reply. Answers come to an exclusive queue of this connection's own, through
 * `sagaflow.answers`: RabbitMQ's direct reply-to would need the services to publish to the default
 * exchange, whose write right reaches every queue by name. Only for queries: a lost answer just times
 * out. Saga commands never go this way.
 */
export class QueryClient {
  private readonly channel: ChannelWrapper;
  private readonly pending = new Map<string, (response: { ok: boolean; data?: unknown; error?: string }) => void>();
  /** The answers queue of the current connection (a new name each time: the old one may linger until the broker notices). */
  private replyTo?: string;

  constructor(
    connection: AmqpConnectionManager,
    name: string,
    private readonly timeoutMs: number,
    /** Declares the process's topology (sagaflow.answers among it) before the answers queue is bound. */
    setup?: (channel: ConfirmChannel) => Promise<void>,
  ) {
    this.channel = connection.createChannel({
      name: `${name}-queries`,
      confirm: false,
      setup: async (channel: ConfirmChannel) => {
        await setup?.(channel);
        const queue = QUEUES.answersOf(randomUUID());
        await channel.assertQueue(queue, { exclusive: true, durable: false, autoDelete: true, arguments: { 'x-queue-type': 'classic' } });
        await channel.bindQueue(queue, EXCHANGES.answers, queue);
        await channel.consume(queue, (message) => message && this.onResponse(message), { noAck: true });
        this.replyTo = queue;
      },
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
    // Rejected by the timer while still sending (reconnecting, say): that rejection is the answer, awaited below.
    response.catch(() => undefined);
    // The broker away: the timer answers, not the reconnect (which may take as long as the outage).
    await Promise.race([this.channel.waitForConnect(), response]);
    await this.channel.publish(EXCHANGES.queries, query.type, Buffer.from(JSON.stringify(payload)), {
      replyTo: this.replyTo,
      correlationId,
      messageId: correlationId,
      type: query.type,
      contentType: 'application/json',
      // The HTTP request's trace goes on into the service that answers.
      headers: activeTraceCarrier() ?? undefined,
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
