import type { AmqpConnectionManager, ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConfirmChannel, ConsumeMessage, MessagePropertyHeaders, Options } from 'amqplib';
import type { Span } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { HEADERS } from '../contracts/envelope.js';
import { deliveryLogFields } from '../logging/message-fields.js';
import { MESSAGES_CONSUMED, MESSAGES_DEAD_LETTERED, MESSAGES_RETRIED, PerType, typeLabel } from '../observability/metrics.js';
import { endSpan, failSpan, inSpan, spanEvent, startConsumeSpan } from '../observability/tracing.js';
import { RetryPolicy, retryDelayBucket, retryDelayMs } from '../contracts/retry-policy.js';
import { BROKER_DELIVERY_LIMIT, EXCHANGES, ownerOfQueue, QUEUES } from '../topology/topology.js';
import { isBundle, unbundle } from './bundle.js';
import type { DeliveryCounter } from './deliveries.js';
import { counterHeader, MalformedMessageError } from './codec.js';
import { DeadLetterError, isConnectionFailure, isTransactionConflict } from './errors.js';
import { type Publisher, UnpublishableMessageError } from './publisher.js';

/** Handles one message; resolves once its effects are durable. Throw DeadLetterError (or MalformedMessageError) to dead-letter it. */
export type MessageHandler = (message: ConsumeMessage) => Promise<void>;

/**
 * How one message of a batch went: nothing (done: ack it), the error (treated as the single handler's would
 * be), or a promise of either, for a message the batch did not wait for (a slow one finished on its own).
 */
export type Outcome = Error | undefined | Promise<Error | undefined>;

/**
 * Handles several messages at once (e.g. in one transaction) and says, per message, how it went. Throwing
 * fails the whole batch: an outage or a conflict is waited out and the batch runs again; anything else
 * falls back to the single handler, one message at a time.
 */
export type BatchHandler = (messages: ConsumeMessage[]) => Promise<Outcome[]>;

export interface ConsumerOptions {
  queue: string;
  /** How many unacked messages the broker may hand this consumer at once. */
  prefetch: number;
  /** A larger body is dead-lettered at once, unread (MAX_MESSAGE_BYTES). */
  maxBytes?: number;
  /** A redelivered message still running after this long lets the next one start beside it (SLOW_HANDLER_MS). */
  slowMs?: number;
  /** Redelivered messages are counted, and started at most `limit` times (MAX_DELIVERIES). */
  deliveries?: { counter: DeliveryCounter; limit: number };
  /** Retries for messages that carry no `x-retry-policy` header; null: the queue has no retry queues, dead-letter at once. */
  retryPolicy: RetryPolicy | null;
  handler: MessageHandler;
  /** Take the messages waiting in hand as batches (at most `prefetch`), one batch at a time; a lone message goes to `handler`. */
  batchHandler?: BatchHandler;
  publisher: Publisher;
  logger: Logger;
  /** Declares what the consumer needs before it starts (run on every reconnect). */
  setup?: (channel: ConfirmChannel) => Promise<void>;
}

/** A message in hand: one of the queue's, or one part of a bundle (see bundle.ts). */
interface Delivery {
  channel: Channel;
  message: ConsumeMessage;
  /** When this consumer took it (epoch ms). */
  receivedAt: number;
  /** The bundle this part came in: it is acked once every part is settled. */
  bundle?: BundleInHand;
  /** Its processing span (tracing on), ended when it is settled. */
  span?: Span;
}

/** A bundle whose parts are in hand: acked once all of them are settled, or requeued whole if one must be. */
class BundleInHand {
  private requeue = false;

  constructor(
    private readonly channel: Channel,
    private readonly message: ConsumeMessage,
    private unsettled: number,
    private readonly done: () => void,
  ) {}

  settlePart(requeue: boolean): void {
    this.requeue ||= requeue;
    if (--this.unsettled > 0) return;
    this.done();
    // Requeued whole, the parts already done are answered again from the inbox (or recorded as stale replies).
    settle(() => (this.requeue ? this.channel.nack(this.message, false, true) : this.channel.ack(this.message)));
  }
}

/** One failed attempt, as recorded in the `x-failures` header. */
export interface AttemptFailure {
  at: string;
  error: string;
}

/**
 * Consumes one queue with manual acks. A message is acked only after its handler resolved (its effects
 * committed). Unreadable or permanently failing messages are moved to the queue's `.dlq` with the reason in
 * their headers. A handler error is retried through the broker: the message is parked in a delay queue
 * (`<queue>.retry.<delay>`) with its attempt count and failures in its headers, and comes back when the delay
 * is over; after the policy's last attempt it goes to the `.dlq`. Nothing waits in memory, so a crash loses
 * nothing. Only an outage of PostgreSQL or RabbitMQ is waited out in hand: it is not the message's fault.
 */
export class Consumer {
  private readonly channel: ChannelWrapper;
  private readonly inFlight = new Set<Promise<void>>();
  private stopping = false;
  private readonly closedChannels = new WeakSet<Channel>();
  private closing?: Promise<void>;
  /** Batch mode: messages delivered and not yet taken into a batch, and whether a batch is running. */
  private waiting: Delivery[] = [];
  private batchRunning = false;
  private batchScheduled = false;
  /** Bundles with parts not yet settled: while there are any, no ack may cover earlier deliveries. */
  private bundlesInHand = 0;
  /** Messages settled outside a batch (refused on arrival, or redelivered): likewise. */
  private settlingApart = 0;
  /** Redelivered messages, started one at a time once counted. */
  private redelivered: Delivery[] = [];
  private redeliveryRunning = false;
  /** sagaflow_messages_*_total of this queue, bound per message type. */
  private readonly consumed: PerType;
  private readonly retried: PerType;
  /**
   * Messages this process has had in hand, with the connection they came on (counted up at each reconnect). A
   * message redelivered after a reconnect of ours was only in hand when the link dropped: bad luck, not poison.
   */
  private readonly held = new Map<string, number>();
  private connections = 0;

  constructor(
    connection: AmqpConnectionManager,
    private readonly options: ConsumerOptions,
  ) {
    this.consumed = new PerType((type) => MESSAGES_CONSUMED.bind(options.queue, type));
    this.retried = new PerType((type) => MESSAGES_RETRIED.bind(options.queue, type));
    connection.on('connect', () => this.connections++);
    this.channel = connection.createChannel({
      name: `consumer:${options.queue}`,
      confirm: false,
      setup: async (channel: ConfirmChannel) => {
        await options.setup?.(channel);
        if (this.stopping) return;
        channel.once('close', () => this.closedChannels.add(channel));
        await channel.prefetch(options.prefetch);
        // Acks go to the channel the message came on: after a reconnect the broker has requeued it anyway.
        await channel.consume(options.queue, (message) => message && this.receive(channel, message), { noAck: false });
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

  private receive(channel: Channel, message: ConsumeMessage): void {
    const { maxBytes = Number.MAX_SAFE_INTEGER } = this.options;
    const receivedAt = Date.now();
    if (message.content.length > maxBytes) {
      this.consumed.of(message.properties.type).inc();
      this.deadLetterApart({ channel, message, receivedAt }, `a body of ${message.content.length} bytes is over MAX_MESSAGE_BYTES (${maxBytes})`);
      return;
    }
    let deliveries: Delivery[] = isBundle(message) ? this.unpack(channel, message, receivedAt) : [{ channel, message, receivedAt }];
    for (const delivery of deliveries) {
      this.consumed.of(delivery.message.properties.type).inc();
      delivery.span = startConsumeSpan(this.options.queue, delivery.message);
    }
    if (this.options.deliveries) {
      const suspects = message.fields.redelivered ? deliveries.filter((delivery) => !this.wasInHandAcrossReconnect(delivery.message)) : [];
      for (const delivery of deliveries) this.hold(delivery.message);
      if (suspects.length) {
        this.settlingApart += suspects.length;
        this.redelivered.push(...suspects);
        this.nextRedelivery();
        deliveries = deliveries.filter((delivery) => !suspects.includes(delivery));
      }
    }
    if (!this.options.batchHandler) {
      for (const delivery of deliveries) this.track(this.onMessage(delivery));
      return;
    }
    if (deliveries.length === 0) return;
    this.waiting.push(...deliveries);
    // amqplib hands over every delivery of one socket read synchronously: start the batch once the read
    // is done, so they all join it (else the first would run alone and the rest wait for the next batch).
    if (this.batchScheduled) return;
    this.batchScheduled = true;
    queueMicrotask(() => {
      this.batchScheduled = false;
      this.nextBatch();
    });
  }

  /** A bundle's parts, each a delivery of its own; a bundle that cannot be read is dead-lettered whole. */
  private unpack(channel: Channel, message: ConsumeMessage, receivedAt: number): Delivery[] {
    let parts: ConsumeMessage[];
    try {
      parts = unbundle(message);
    } catch (error) {
      this.consumed.of(message.properties.type).inc();
      this.deadLetterApart({ channel, message, receivedAt }, errorText(error));
      return [];
    }
    this.bundlesInHand++;
    const bundle = new BundleInHand(channel, message, parts.length, () => this.bundlesInHand--);
    return parts.map((part) => ({ channel, message: part, bundle, receivedAt }));
  }

  /** Remembers that this process had the message in hand, on which connection (the oldest memories go first). */
  private hold(message: ConsumeMessage): void {
    const key = heldKey(message);
    this.held.delete(key);
    this.held.set(key, this.connections);
    if (this.held.size > HELD_MEMORY) this.held.delete(this.held.keys().next().value!);
  }

  /**
   * A redelivery of a message this process had in hand on an earlier connection: the broker took it back when
   * the link dropped, not because it crashed its consumer. It is not counted towards MAX_DELIVERIES.
   */
  private wasInHandAcrossReconnect(message: ConsumeMessage): boolean {
    const heldOn = this.held.get(heldKey(message));
    return heldOn !== undefined && heldOn < this.connections;
  }

  /** Dead-letters a message refused before any batch takes it; no multi-ack may cover it meanwhile. */
  private deadLetterApart(delivery: Delivery, error: string): void {
    this.settlingApart++;
    this.track(this.deadLetter(delivery, 'malformed', error).finally(() => this.settlingApart--));
  }

  /**
   * Starts the next redelivered message, alone: counted first (committed), so that one which crashes its
   * consumer every time is dead-lettered after MAX_DELIVERIES starts, and one that only shared a crashed
   * consumer's prefetch, waiting behind it, is not charged for it. One still running after `slowMs` has
   * not crashed anything yet: the next starts beside it, so that a slow one does not hold the others.
   */
  private nextRedelivery(): void {
    if (this.redeliveryRunning || this.stopping) return;
    const delivery = this.redelivered.shift();
    if (!delivery) return;
    this.redeliveryRunning = true;
    let released = false;
    let timer: NodeJS.Timeout | undefined;
    const next = () => {
      clearTimeout(timer);
      if (released) return;
      released = true;
      this.redeliveryRunning = false;
      this.nextRedelivery();
    };
    // Counted and started: if it is still running a moment later, it did not crash its consumer by starting.
    const started = () =>
      (timer = setTimeout(() => {
        const { queue, logger, deliveries } = this.options;
        deliveries!.counter.survived(queue, delivery.message).catch((error: Error) => logger.warn({ queue, ...deliveryLogFields(delivery.message), err: error.message }, 'cannot record a start that outlived its first moments'));
        next();
      }, this.options.slowMs ?? 250));
    this.track(
      this.startCounted(delivery, started).finally(() => {
        this.settlingApart--;
        next();
      }),
    );
  }

  private async startCounted(delivery: Delivery, started: () => void): Promise<void> {
    const { queue, logger, deliveries } = this.options;
    for (let outages = 1; ; outages++) {
      if (this.closedChannels.has(delivery.channel) || this.stopping) return this.requeue(delivery);
      try {
        const { starts, survived } = await deliveries!.counter.started(queue, delivery.message);
        if (starts > deliveries!.limit) {
          const why = `delivered ${starts} times without being settled: it crashed or stalled its consumer each time (MAX_DELIVERIES ${deliveries!.limit})`;
          return await this.deadLetter(delivery, 'delivery-limit', why);
        }
        // However long its starts ran before its consumer died, a message does not come back without end.
        if (survived >= BROKER_DELIVERY_LIMIT) {
          return await this.deadLetter(delivery, 'delivery-limit', `its consumer died ${survived} times while it was in hand (at most ${BROKER_DELIVERY_LIMIT})`);
        }
        started();
        return await this.onMessage(delivery);
      } catch (error) {
        logger.warn({ queue, ...deliveryLogFields(delivery.message), outages, err: errorText(error) }, 'cannot count a redelivery; retrying');
        await delay(Math.min(100 * 2 ** outages, 5_000));
      }
    }
  }

  /** Starts a batch with what is waiting unless one is running; what arrives meanwhile makes the next one. */
  private nextBatch(): void {
    if (this.batchRunning || this.stopping) return;
    // Messages of a channel that closed were requeued by the broker: drop them.
    const open = this.waiting.filter(({ channel }) => !this.closedChannels.has(channel));
    if (open.length === 0) {
      this.waiting = [];
      return;
    }
    const batch = open.slice(0, this.options.prefetch);
    this.waiting = open.slice(batch.length);
    this.batchRunning = true;
    this.track(
      this.onBatch(batch).finally(() => {
        this.batchRunning = false;
        this.nextBatch();
      }),
    );
  }

  private async onBatch(batch: Delivery[]): Promise<void> {
    const { logger, queue } = this.options;
    let outcomes: Outcome[] | null = null;
    for (let outages = 1; ; outages++) {
      try {
        // One transaction for the batch: its statements are traced under the first message's span.
        const messages = batch.map(({ message }) => message);
        outcomes = await (batch[0].span ? inSpan(batch[0].span, () => this.options.batchHandler!(messages)) : this.options.batchHandler!(messages));
        break;
      } catch (error) {
        if (this.stopping || batch.every(({ channel }) => this.closedChannels.has(channel))) {
          for (const delivery of batch) this.requeue(delivery);
          return;
        }
        if (!isConnectionFailure(error) && !isTransactionConflict(error)) {
          logger.warn({ queue, size: batch.length, err: errorText(error) }, 'batch failed; handling its messages one by one');
          break;
        }
        logger.warn({ queue, size: batch.length, outages, err: errorText(error) }, 'batch could not commit; retrying');
        await delay(Math.min(100 * 2 ** outages, 5_000));
      }
    }
    const [{ channel: first }] = batch;
    if (outcomes?.every((outcome) => outcome === undefined) && this.bundlesInHand === 0 && this.settlingApart === 0 && batch.every(({ channel }) => channel === first)) {
      // One frame acks the whole batch: batches run one at a time and in delivery order, so every earlier
      // delivery on this channel is settled already (no bundle is partly done, nothing refused on arrival pending).
      const last = batch.reduce((a, b) => (b.message.fields.deliveryTag > a.message.fields.deliveryTag ? b : a));
      settle(() => first.ack(last.message, true));
      for (const { span } of batch) endSpan(span);
      return;
    }
    await Promise.all(
      batch.map((delivery, index) => {
        if (!outcomes) return this.onMessage(delivery);
        const outcome = outcomes[index];
        if (outcome instanceof Promise) return this.settleLater(delivery, outcome);
        if (!outcome) return this.ack(delivery);
        return this.onFailure(delivery, outcome);
      }),
    );
  }

  /**
   * A message its batch did not wait for: settled once its outcome comes, apart from the batches (no multi-ack
   * covers it meanwhile). An outage that fails it is waited out, as for a single message.
   */
  private settleLater(delivery: Delivery, outcome: Promise<Error | undefined>): void {
    this.settlingApart++;
    this.track(
      outcome
        .then(
          (error) => error,
          (error: Error) => error,
        )
        .then((error) => {
          if (!error) return this.ack(delivery);
          if (isConnectionFailure(error) && !this.stopping && !this.closedChannels.has(delivery.channel)) return this.onMessage(delivery);
          return this.onFailure(delivery, error);
        })
        .finally(() => this.settlingApart--),
    );
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private ack({ channel, message, bundle, span }: Delivery): void {
    endSpan(span);
    if (bundle) bundle.settlePart(false);
    else settle(() => channel.ack(message));
  }

  /** Back to the queue (a bundle's part: the whole bundle, once its other parts are settled). */
  private requeue({ channel, message, bundle, span }: Delivery): void {
    spanEvent(span, 'requeued');
    endSpan(span);
    if (bundle) bundle.settlePart(true);
    else settle(() => channel.nack(message, false, true));
  }

  private async onMessage(delivery: Delivery): Promise<void> {
    const { channel, message } = delivery;
    const { logger, queue } = this.options;
    for (let outages = 1; ; outages++) {
      try {
        await (delivery.span ? inSpan(delivery.span, () => this.options.handler(message)) : this.options.handler(message));
        this.ack(delivery);
        return;
      } catch (error) {
        if (!isConnectionFailure(error) || this.stopping || this.closedChannels.has(channel)) {
          await this.onFailure(delivery, error);
          return;
        }
        // Unacked while we wait: a crash meanwhile returns the message to the queue.
        logger.warn({ queue, ...deliveryLogFields(message), outages, err: errorText(error) }, 'dependency unreachable; retrying');
        await delay(Math.min(100 * 2 ** outages, 5_000));
      }
    }
  }

  /** A handler failed on this message: dead-letter it, leave it to the broker, or retry it later. */
  private async onFailure(delivery: Delivery, error: unknown): Promise<void> {
    failSpan(delivery.span, error);
    if (error instanceof DeadLetterError || error instanceof MalformedMessageError) {
      await this.deadLetter(delivery, error.reason, error.message);
      return;
    }
    if (this.stopping || this.closedChannels.has(delivery.channel)) {
      // Shutting down, or the channel is gone: the broker gives the message to a consumer again.
      this.requeue(delivery);
      return;
    }
    await this.retryLater(delivery, errorText(error));
  }

  /** Parks the message in a delay queue for its next attempt, or dead-letters it after the last one. */
  private async retryLater(delivery: Delivery, error: string): Promise<void> {
    const { message } = delivery;
    const { logger, queue } = this.options;
    const headers = message.properties.headers ?? {};
    let attempt: number;
    let attemptsThisRound: number;
    try {
      attempt = counterHeader(headers, HEADERS.attempt, 1);
      // After a replay from the .dlq the attempts go on counting, and the retry budget starts again.
      attemptsThisRound = attempt - counterHeader(headers, HEADERS.retryBase, 0);
    } catch (malformed) {
      await this.deadLetter(delivery, 'malformed', errorText(malformed));
      return;
    }
    const policy = parsePolicy(headers[HEADERS.retryPolicy]) ?? this.options.retryPolicy;
    const failures: AttemptFailure[] = [...parseFailures(headers[HEADERS.failures]), { at: new Date().toISOString(), error: error.slice(0, 300) }];
    const retryState = {
      [HEADERS.failures]: JSON.stringify(failures),
      [HEADERS.firstFailureAt]: failures[0].at,
      [HEADERS.lastFailureAt]: failures[failures.length - 1].at,
      // When the work first began, so that the reply can tell the saga the wait in the queue apart from the work.
      [HEADERS.startedAt]: typeof headers[HEADERS.startedAt] === 'number' ? headers[HEADERS.startedAt] : delivery.receivedAt,
    };
    if (!policy || attemptsThisRound >= policy.attempts) {
      await this.deadLetter(delivery, 'retries-exhausted', error, { ...retryState, [HEADERS.attempts]: attempt });
      return;
    }
    const delayMs = retryDelayMs(policy, attemptsThisRound);
    logger.warn({ queue, ...deliveryLogFields(message), attempt, delayMs, err: error }, 'handler failed; retrying later');
    try {
      // The delay queue's TTL caps the wait; the message's own expiration makes it exact (jitter included).
      await this.republish(EXCHANGES.requeueOf(ownerOfQueue(queue)!), QUEUES.retryOf(queue, retryDelayBucket(delayMs)), message, { ...retryState, [HEADERS.attempt]: attempt + 1 }, String(delayMs));
      this.retried.of(message.properties.type).inc();
      spanEvent(delivery.span, 'retry scheduled', { 'sagaflow.attempt': attempt, 'sagaflow.delay_ms': delayMs });
      this.ack(delivery);
    } catch (publishError) {
      logger.error({ queue, ...deliveryLogFields(message), err: errorText(publishError) }, 'could not park the retry; requeueing');
      this.requeue(delivery);
    }
  }

  /**
   * Publishes a delivered message elsewhere (a delay queue, the .dlq) with headers added, confirmed. A message
   * whose properties or headers AMQP cannot carry again as they came (a producer may send what amqplib will
   * not encode) goes with them made carriable instead, so that it still moves on rather than coming back.
   */
  private async republish(exchange: string, routingKey: string, message: ConsumeMessage, added: MessagePropertyHeaders, expiration?: string): Promise<void> {
    const { publisher } = this.options;
    const as = (properties: Options.Publish, headers: MessagePropertyHeaders) =>
      publisher.publishRaw(exchange, routingKey, message.content, { ...properties, ...(expiration ? { expiration } : {}), headers: { ...headers, ...added } });
    const headers = message.properties.headers ?? {};
    const attempts = [
      () => as(copyProperties(message), headers),
      (why: string) => as(carriable(message), { ...carriableHeaders(headers), [HEADERS.sanitized]: why }),
      // Last: the id alone and what was added (nothing a producer sent can stop it now).
      (why: string) => as({ messageId: carriable(message).messageId, persistent: true }, { [HEADERS.sanitized]: why }),
    ];
    let why = '';
    for (const attempt of attempts) {
      try {
        return await attempt(why);
      } catch (error) {
        if (!(error instanceof UnpublishableMessageError) || attempt === attempts[attempts.length - 1]) throw error;
        why = error.message.slice(0, 500);
      }
    }
  }

  /** Moves the message to `<queue>.dlq` (confirmed) with why, then acks it. */
  private async deadLetter(delivery: Delivery, reason: string, error: string, extra: MessagePropertyHeaders = {}): Promise<void> {
    const { channel, message, bundle } = delivery;
    const { logger, queue } = this.options;
    logger.error({ queue, ...deliveryLogFields(message), reason, err: error }, 'message dead-lettered');
    try {
      await this.republish(EXCHANGES.deadLetters, queue, message, {
        ...extra,
        [HEADERS.deadLetterReason]: reason,
        [HEADERS.deadLetterError]: error.slice(0, 1_000),
        [HEADERS.originalQueue]: queue,
        [HEADERS.deadLetteredAt]: new Date().toISOString(),
      });
      MESSAGES_DEAD_LETTERED.bind(queue, typeLabel(message.properties.type), reason).inc();
      spanEvent(delivery.span, 'dead-lettered', { 'sagaflow.dead_letter.reason': reason });
      this.ack(delivery);
    } catch (publishError) {
      // Could not publish to the DLQ: let the broker dead-letter it (the queue's DLX), without our headers.
      // A bundle's part goes back with its bundle instead: the broker would dead-letter its siblings too.
      logger.error({ queue, ...deliveryLogFields(message), err: errorText(publishError) }, 'dead-letter publish failed; rejecting');
      if (bundle) this.requeue(delivery);
      else {
        endSpan(delivery.span, publishError);
        settle(() => channel.nack(message, false, false));
      }
    }
  }
}

/** How many messages a consumer remembers having had in hand (to tell a reconnect from a crash). */
const HELD_MEMORY = 20_000;

/** A message as the delivery limit counts it: a copy the orchestrator sent again (x-resend) is another message. */
const heldKey = (message: ConsumeMessage): string => `${String(message.properties.messageId)}#${String(message.properties.headers?.[HEADERS.resend] ?? 0)}`;

/** The properties a moved message keeps (headers are set by the caller). */
function copyProperties({ properties, fields }: ConsumeMessage): Options.Publish {
  return {
    messageId: properties.messageId ?? `unnamed-${Date.now()}-${fields.deliveryTag}`,
    type: properties.type,
    correlationId: properties.correlationId,
    contentType: properties.contentType,
    timestamp: properties.timestamp,
    appId: properties.appId,
    persistent: true,
  };
}

/** Text AMQP can carry as a short string (≤ 255 bytes): anything else as its JSON, cut short. */
function short(value: unknown, maxBytes = 255): string | undefined {
  if (value === undefined || value === null) return undefined;
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return Buffer.byteLength(text) <= maxBytes ? text : `${Buffer.from(text).subarray(0, maxBytes - 4).toString('utf8')}…`;
}

/** The properties of a message, made carriable (see republish). */
function carriable(message: ConsumeMessage): Options.Publish {
  const { properties, fields } = message;
  return {
    messageId: short(properties.messageId) ?? `unnamed-${Date.now()}-${fields.deliveryTag}`,
    type: short(properties.type),
    correlationId: short(properties.correlationId),
    contentType: short(properties.contentType),
    timestamp: Number.isSafeInteger(properties.timestamp) && properties.timestamp >= 0 ? properties.timestamp : undefined,
    appId: short(properties.appId),
    persistent: true,
  };
}

/** Headers made carriable: numbers and booleans as they are, anything else as (cut) text, within a budget. */
function carriableHeaders(headers: MessagePropertyHeaders): MessagePropertyHeaders {
  const kept: MessagePropertyHeaders = {};
  let budget = 32_000;
  for (const [name, value] of Object.entries(headers)) {
    const carried = (typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean' ? value : short(value, 4_096);
    const size = Buffer.byteLength(name) + (typeof carried === 'string' ? Buffer.byteLength(carried) : 9);
    if (Buffer.byteLength(name) > 255 || carried === undefined || size > budget) continue;
    kept[name] = carried;
    budget -= size;
  }
  return kept;
}

function parsePolicy(header: unknown): RetryPolicy | null {
  if (typeof header !== 'string') return null;
  try {
    const parsed = RetryPolicy.safeParse(JSON.parse(header));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export function parseFailures(header: unknown): AttemptFailure[] {
  if (typeof header !== 'string') return [];
  try {
    const parsed = JSON.parse(header);
    return Array.isArray(parsed) ? parsed : [];
  } catch {
    return [];
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
