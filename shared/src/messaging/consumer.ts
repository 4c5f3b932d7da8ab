import type { AmqpConnectionManager, ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import { HEADERS } from '../contracts/envelope.js';
import { EXCHANGES } from '../topology/topology.js';
import { MalformedMessageError } from './codec.js';
import { DeadLetterError } from './errors.js';
import type { Publisher } from './publisher.js';

/** Handles one message; resolves once its effects are durable. Throw DeadLetterError (or MalformedMessageError) to dead-letter it. */
export type MessageHandler = (message: ConsumeMessage) => Promise<void>;

export interface ConsumerOptions {
  queue: string;
  /** How many unacked messages the broker may hand this consumer at once. */
  prefetch: number;
  /** Transient failures are redelivered this many times before the message is dead-lettered. */
  maxRedeliveries: number;
  handler: MessageHandler;
  publisher: Publisher;
  logger: Logger;
  /** Declares what the consumer needs before it starts (run on every reconnect). */
  setup?: (channel: ConfirmChannel) => Promise<void>;
}

/**
 * Consumes one queue with manual acks. A message is acked only after its handler resolved (its effects
 * committed, its replies confirmed). Unreadable or permanently failing messages are moved to the queue's
 * `.dlq` with the reason in their headers, then acked, so the consumer keeps going. Other errors are
 * redelivered, a bounded number of times.
 */
export class Consumer {
  private readonly channel: ChannelWrapper;
  private readonly inFlight = new Set<Promise<void>>();
  /** Redelivery counts for classic queues, which do not count deliveries themselves. */
  private readonly failures = new Map<string, number>();
  private stopping = false;
  private closing?: Promise<void>;

  constructor(
    connection: AmqpConnectionManager,
    private readonly options: ConsumerOptions,
  ) {
    this.channel = connection.createChannel({
      name: `consumer:${options.queue}`,
      confirm: false,
      setup: async (channel: ConfirmChannel) => {
        await options.setup?.(channel);
        if (this.stopping) return;
        await channel.prefetch(options.prefetch);
        // Acks go to the channel the message came on: after a reconnect the broker has requeued it anyway.
        await channel.consume(options.queue, (message) => message && this.track(this.onMessage(channel, message)), {
          noAck: false,
        });
      },
    });
  }

  waitForConnect(): Promise<void> {
    return this.channel.waitForConnect();
  }

  /** Stops taking messages, lets the ones in hand finish, then closes the channel. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      await this.channel.cancelAll().catch(() => undefined);
      await Promise.allSettled([...this.inFlight]);
      await this.channel.close();
    })();
    return this.closing;
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private async onMessage(channel: Channel, message: ConsumeMessage): Promise<void> {
    const { logger, queue } = this.options;
    const meta = { queue, messageId: message.properties.messageId, type: message.properties.type, sagaId: message.properties.headers?.[HEADERS.sagaId] };
    try {
      await this.options.handler(message);
      settle(() => channel.ack(message));
      this.failures.delete(String(meta.messageId));
    } catch (error) {
      if (error instanceof DeadLetterError || error instanceof MalformedMessageError) {
        await this.deadLetter(channel, message, error.reason, error.message);
        return;
      }
      const attempts = this.countFailure(message);
      if (attempts > this.options.maxRedeliveries) {
        await this.deadLetter(channel, message, 'retries-exhausted', errorText(error));
        return;
      }
      logger.warn({ ...meta, attempts, err: errorText(error) }, 'handler failed; message will be redelivered');
      await delay(Math.min(100 * 2 ** attempts, 2_000));
      settle(() => channel.nack(message, false, true));
    }
  }

  private countFailure(message: ConsumeMessage): number {
    const id = String(message.properties.messageId ?? message.fields.deliveryTag);
    const brokerCount = Number(message.properties.headers?.['x-delivery-count'] ?? 0);
    const count = Math.max((this.failures.get(id) ?? 0) + 1, brokerCount + 1);
    this.failures.set(id, count);
    if (this.failures.size > 10_000) this.failures.delete(this.failures.keys().next().value!);
    return count;
  }

  /** Moves the message to `<queue>.dlq` (confirmed) with why, then acks it. */
  private async deadLetter(channel: Channel, message: ConsumeMessage, reason: string, error: string): Promise<void> {
    const { logger, queue, publisher } = this.options;
    const { properties } = message;
    logger.error(
      { queue, messageId: properties.messageId, type: properties.type, sagaId: properties.headers?.[HEADERS.sagaId], reason, err: error },
      'message dead-lettered',
    );
    try {
      await publisher.publishRaw(EXCHANGES.deadLetters, queue, message.content, {
        messageId: properties.messageId ?? `dead-letter-${Date.now()}-${message.fields.deliveryTag}`,
        type: properties.type,
        correlationId: properties.correlationId,
        contentType: properties.contentType,
        timestamp: properties.timestamp,
        appId: properties.appId,
        persistent: true,
        headers: {
          ...properties.headers,
          [HEADERS.deadLetterReason]: reason,
          [HEADERS.deadLetterError]: error.slice(0, 1_000),
          [HEADERS.originalQueue]: queue,
          [HEADERS.deadLetteredAt]: new Date().toISOString(),
        },
      });
      settle(() => channel.ack(message));
    } catch (publishError) {
      // Could not publish to the DLQ: let the broker dead-letter it (the queue's DLX), without our headers.
      logger.error({ queue, messageId: properties.messageId, err: errorText(publishError) }, 'dead-letter publish failed; rejecting');
      settle(() => channel.nack(message, false, false));
    }
  }
}

/** Acking on a channel that has closed throws; the broker has already requeued the message then. */
function settle(action: () => void): void {
  try {
    action();
  } catch {
    // The channel closed under us: the broker has requeued the message and will deliver it again.
  }
}

export const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
