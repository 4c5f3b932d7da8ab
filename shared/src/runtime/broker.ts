import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { ConfirmChannel } from 'amqplib';
import type { Logger } from 'pino';
import type { BaseEnv } from '../config/env.js';
import { DEFAULT_RETRY_POLICY } from '../contracts/retry-policy.js';
import { connectBroker } from '../messaging/connection.js';
import { type BatchHandler, Consumer, type MessageHandler } from '../messaging/consumer.js';
import type { DeliveryCounter } from '../messaging/deliveries.js';
import { Publisher } from '../messaging/publisher.js';
import { awaitDeclared, declareTopology, partOf, type TopologyPart } from '../topology/declare.js';
import { buildTopology, OWNERS } from '../topology/topology.js';

/**
 * A process's link to RabbitMQ: a reconnecting connection for its consumers and another for its confirmed
 * publisher (and queries), since a memory or disk alarm blocks a connection that publishes and would stop
 * its consumers too. Every channel declares the process's own part of the topology when it opens, after
 * waiting for what other processes own (exchanges it binds to or publishes to), so start order does not matter.
 */
export class Broker {
  /** The consumers' connection (and the console's, which reads the dead-letter queues). */
  readonly connection: AmqpConnectionManager;
  /** The publisher's connection (and the query client's). */
  readonly publishConnection: AmqpConnectionManager;
  readonly publisher: Publisher;
  private readonly consumers: Consumer[] = [];
  /** Run by every channel of this process when it opens (on each reconnect): on the consumers' connection, and on the publisher's. */
  readonly declare: (channel: ConfirmChannel) => Promise<void>;
  readonly declarePublishing: (channel: ConfirmChannel) => Promise<void>;
  private readonly part: TopologyPart;
  /** The declaration under way, if any (see declareOn). */
  private declaring: Promise<void> = Promise.resolve();
  /** Per connection: the others' part has been seen (one wait shared by all channels). */
  private readonly othersDeclared = new WeakMap<object, Promise<void>>();

  constructor(
    private readonly env: BaseEnv,
    readonly name: string,
    private readonly logger: Logger,
    /** Counts redeliveries, so that a message crashing its consumer is dead-lettered after MAX_DELIVERIES. */
    private readonly deliveryCounter?: DeliveryCounter,
  ) {
    const owner = OWNERS.find((candidate) => candidate === name);
    if (!owner) throw new Error(`${name} owns no part of the broker topology`);
    this.part = partOf(owner, buildTopology(env.QUEUE_TYPE));
    this.connection = connectBroker(env.AMQP_URL, name, 'consume', logger);
    this.publishConnection = connectBroker(env.AMQP_URL, name, 'publish', logger);
    this.declare = this.declareOn(this.connection);
    this.declarePublishing = this.declareOn(this.publishConnection);
    this.publisher = new Publisher(this.publishConnection, name, this.declarePublishing, { bundleMax: env.BUNDLE_MAX, maxBytes: env.MAX_MESSAGE_BYTES, logger });
  }

  /**
   * Consumes a queue; `retries: false` for queues without delay queues (queries), whose failures are not
   * retried; `batch` to take the messages in hand as batches (see Consumer).
   */
  consume(queue: string, handler: MessageHandler, { retries = true, batch }: { retries?: boolean; batch?: BatchHandler } = {}): Consumer {
    const consumer = new Consumer(this.connection, {
      queue,
      handler,
      batchHandler: batch,
      prefetch: this.env.PREFETCH,
      maxBytes: this.env.MAX_MESSAGE_BYTES,
      deliveries: this.deliveryCounter && { counter: this.deliveryCounter, limit: this.env.MAX_DELIVERIES },
      slowMs: this.env.SLOW_HANDLER_MS,
      retryPolicy: retries ? { ...DEFAULT_RETRY_POLICY, attempts: this.env.RETRY_ATTEMPTS } : null,
      publisher: this.publisher,
      logger: this.logger,
      setup: this.declare,
    });
    this.consumers.push(consumer);
    return consumer;
  }

  /** Declares the process's part once the others' part is there, waiting on a channel of `manager`'s connection. */
  private declareOn(manager: AmqpConnectionManager): (channel: ConfirmChannel) => Promise<void> {
    return async (channel) => {
      const model = manager.connection;
      if (model) {
        let declared = this.othersDeclared.get(model);
        if (!declared) {
          // Normal at a first start (the orchestrator declares the shared exchanges); a warning if it lasts.
          const waiting = (missing: string, waitedSeconds: number) =>
            this.logger[waitedSeconds ? 'warn' : 'info']({ missing, waitedSeconds }, 'waiting for the process that owns it to declare it');
          declared = awaitDeclared(model, this.part.awaits, waiting);
          this.othersDeclared.set(model, declared);
        }
        await declared;
      }
      // One declaration at a time per process: the same queue declared at once from both connections made
      // RabbitMQ 3.10 answer NOT_FOUND ("home node ... is down") to one of them.
      const declared = this.declaring.then(() => declareTopology(channel, this.part));
      this.declaring = declared.catch(() => undefined);
      await declared;
    };
  }

  isConnected(): boolean {
    return this.connection.isConnected() && this.publishConnection.isConnected();
  }

  onApplicationShutdown(): Promise<void> {
    return this.close();
  }

  /** Stops consumers first (finishing messages in hand), then the publisher, then the connection. */
  async close(): Promise<void> {
    await Promise.all(this.consumers.map((consumer) => consumer.close()));
    await this.publisher.close();
    await Promise.all([this.connection.close(), this.publishConnection.close()]);
  }
}
