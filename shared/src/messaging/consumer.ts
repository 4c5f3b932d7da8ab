import type { AmqpConnectionManager, ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import { HEADERS } from '../contracts/envelope.js';
import { EXCHANGES } from '../topology/topology.js';
import { MalformedMessageError } from './codec.js';
import { DeadLetterError, isConnectionFailure } from './errors.js';
import type { Publisher } from './publisher.js';

/** Handles one message; resolves once its effects are durable. Throw DeadLetterError (or MalformedMessageError) to dead-letter it. */
export type MessageHandler = (message: ConsumeMessage) => Promise<void>;

export interface ConsumerOptions {
  queue: string;
  /** How many unacked messages the broker may hand this consumer at once. */
  prefetch: number;
  /**
   * How many times a failing handler is retried (with back-off) before the message is dead-lettered.
   * Failures to reach PostgreSQL or RabbitMQ do not count: they are retried until the dependency is back.
   */
  maxRetries: number;
  handler: MessageHandler;
  publisher: Publisher;
  logger: Logger;
  /** Declares what the consumer needs before it starts (run on every reconnect). */
  setup?: (channel: ConfirmChannel) => Promise<void>;
}

/**
 * Consumes one queue with manual acks. A message is acked only after its handler resolved (its effects
 * committed). Unreadable or permanently failing messages are moved to the queue's `.dlq` with the reason
 * in their headers, then acked, so the consumer keeps going. Other errors are retried with back-off, a
 * bounded number of times (unbounded while PostgreSQL or RabbitMQ is unreachable).
 */
export class Consumer {
  private readonly channel: ChannelWrapper;
  private readonly inFlight = new Set<Promise<void>>();
  private stopping = false;
  private readonly closedChannels = new WeakSet<Channel>();
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
        channel.once('close', () => this.closedChannels.add(channel));
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
    const { logger, queue, maxRetries } = this.options;
    const meta = { queue, messageId: message.properties.messageId, type: message.properties.type, sagaId: message.properties.headers?.[HEADERS.sagaId] };
    for (let failures = 0, outages = 0; ; ) {
      try {
        await this.options.handler(message);
        settle(() => channel.ack(message));
        return;
      } catch (error) {
        if (error instanceof DeadLetterError || error instanceof MalformedMessageError) {
          await this.deadLetter(channel, message, error.reason, error.message);
          return;
        }
        if (this.stopping || this.closedChannels.has(channel)) {
          // Shutting down, or the channel is gone: the broker gives the message to a consumer again.
          settle(() => channel.nack(message, false, true));
          return;
        }
        // The message stays in hand (unacked) while it is retried: a crash meanwhile returns it to the queue.
        const outage = isConnectionFailure(error);
        if (outage) outages++;
        else failures++;
        if (failures > maxRetries) {
          await this.deadLetter(channel, message, 'retries-exhausted', errorText(error));
          return;
        }
        const attempt = outage ? outages : failures;
        logger.warn({ ...meta, failures, outage, err: errorText(error) }, outage ? 'dependency unreachable; retrying' : 'handler failed; retrying');
        await delay(Math.min(100 * 2 ** attempt, 5_000));
      }
    }
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
