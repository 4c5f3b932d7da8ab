import type { AmqpConnectionManager, ChannelWrapper } from 'amqp-connection-manager';
import type { ConfirmChannel, Options } from 'amqplib';
import type { Logger } from 'pino';
import type { Envelope } from '../contracts/envelope.js';
import { bundle } from './bundle.js';
import { ConfirmWatch, type Settle } from './confirm-watch.js';
import { encode, envelopeProblem, type OutgoingMessage } from './codec.js';
import { MESSAGES_PUBLISHED, PerType } from '../observability/metrics.js';
import { endSpan, settleSpan, startPublishSpan, tracingOn } from '../observability/tracing.js';

/** A message to publish as one of several (see `publishAll`). */
export interface Outgoing {
  exchange: string;
  routingKey: string;
  envelope: Envelope;
}

/** The broker could not route a message to any queue. */
export class UnroutableMessageError extends Error {}

/** A message every consumer would refuse (a bad id, an unreadable correlation id), so it is not sent. Retrying cannot help. */
export class UnpublishableMessageError extends Error {}

/** A message over MAX_MESSAGE_BYTES: every consumer would refuse it, so it is not sent. */
export class MessageTooLargeError extends UnpublishableMessageError {}

/** How long a publish may wait for the broker: for its confirm, or for the link to come back. */
const CONFIRM_TIMEOUT_MS = 30_000;

export interface PublisherOptions {
  /** Up to this many messages for one exchange and routing key go as one bundle (1: never bundle). */
  bundleMax?: number;
  /** The largest body a consumer takes (MAX_MESSAGE_BYTES); a bundle that would be larger goes as its parts. */
  maxBytes?: number;
  confirmTimeoutMs?: number;
  logger?: Logger;
}

/**
 * Publishes on a confirm channel: every publish resolves only once the broker has taken responsibility
 * for the message. Publishes are `mandatory`, so a message no queue takes is reported, never dropped
 * silently (the exchanges' alternate exchange also keeps a copy in `sagaflow.unroutable`).
 *
 * While connected it publishes straight on amqplib's channel; amqp-connection-manager's queue (a
 * promise and a timer per message) is only for publishes made while it reconnects.
 */
export class Publisher {
  private channel: ChannelWrapper;
  /** Publishes on `open` awaiting their confirm, and a look now and then for a channel that stopped confirming. */
  private readonly watch: ConfirmWatch;
  private readonly watchdog: NodeJS.Timeout;
  private readonly returned = new Set<string>();
  private open?: ConfirmChannel;
  private readonly bundleMax: number;
  private readonly confirmTimeoutMs: number;
  private readonly maxBytes: number;
  /** Confirmed publishes, per exchange and type (sagaflow_messages_published_total). */
  private readonly sent = new Map<string, PerType>();
  /** RabbitMQ blocks this connection (a memory or disk alarm): a publish would wait until it clears. */
  private blocked = false;

  constructor(
    private readonly connection: AmqpConnectionManager,
    private readonly appId: string,
    private readonly setup?: (channel: ConfirmChannel) => Promise<void>,
    private readonly options: PublisherOptions = {},
  ) {
    this.bundleMax = options.bundleMax ?? 1;
    this.maxBytes = options.maxBytes ?? Number.MAX_SAFE_INTEGER;
    this.confirmTimeoutMs = options.confirmTimeoutMs ?? CONFIRM_TIMEOUT_MS;
    connection.on('blocked', () => (this.blocked = true));
    connection.on('unblocked', () => (this.blocked = false));
    connection.on('disconnect', () => (this.blocked = false));
    this.channel = this.openChannel();
    this.watch = new ConfirmWatch(this.confirmTimeoutMs);
    this.watchdog = setInterval(() => this.checkConfirms(), Math.min(5_000, this.confirmTimeoutMs / 4));
    this.watchdog.unref();
  }

  private openChannel(): ChannelWrapper {
    return this.connection.createChannel({
      name: `${this.appId}-publisher`,
      confirm: true,
      publishTimeout: this.confirmTimeoutMs,
      setup: async (channel: ConfirmChannel) => {
        channel.on('return', (message) => this.returned.add(String(message.properties.messageId)));
        channel.once('close', () => {
          if (this.open === channel) this.open = undefined;
        });
        await this.setup?.(channel);
        this.open = channel;
      },
    });
  }

  /** A channel that stopped confirming: what waited on it has failed as an outage; publish on a new one. */
  private checkConfirms(): void {
    if (!this.watch.check(Date.now())) return;
    this.options.logger?.warn({ channel: `${this.appId}-publisher` }, 'the broker stopped confirming publishes; opening a new channel');
    const wedged = this.channel;
    this.open = undefined;
    this.channel = this.openChannel();
    wedged.close().catch(() => undefined);
  }

  async publish(exchange: string, routingKey: string, envelope: Envelope, extra: Options.Publish = {}): Promise<void> {
    const { content, options } = this.encode(envelope);
    const headers = { ...options.headers, ...extra.headers };
    const span = startPublishSpan(exchange, envelope.type, options, headers);
    await settleSpan(span, this.publishRaw(exchange, routingKey, content, { ...options, ...extra, headers }));
    this.sentTo(exchange).of(envelope.type).inc();
  }

  private sentTo(exchange: string): PerType {
    let perType = this.sent.get(exchange);
    if (!perType) this.sent.set(exchange, (perType = new PerType((type) => MESSAGES_PUBLISHED.bind(exchange, type))));
    return perType;
  }

  /**
   * Publishes messages that are ready together; per message, nothing (confirmed) or why it failed. With
   * bundling on, those for one exchange and routing key go as bundles of up to `bundleMax`.
   */
  async publishAll(messages: Outgoing[]): Promise<(Error | undefined)[]> {
    const outcomes: (Error | undefined)[] = new Array(messages.length).fill(undefined);
    const groups: number[][] = [];
    const filling = new Map<string, number[]>();
    messages.forEach(({ exchange, routingKey }, index) => {
      const key = `${exchange}\n${routingKey}`;
      let group = this.bundleMax > 1 ? filling.get(key) : undefined;
      if (!group || group.length >= this.bundleMax) {
        groups.push((group = []));
        filling.set(key, group);
      }
      group.push(index);
    });
    await Promise.all(
      groups.map(async (group) => {
        const { exchange, routingKey } = messages[group[0]];
        let indexes = group;
        if (indexes.length > 1) {
          // A message that cannot be sent fails alone; the others still travel together.
          const parts = new Map<number, OutgoingMessage>();
          for (const index of indexes) {
            try {
              parts.set(index, this.encode(messages[index].envelope));
            } catch (error) {
              outcomes[index] = error as Error;
            }
          }
          indexes = [...parts.keys()];
          if (indexes.length > 1) {
            // A span per part (each is its own message to its consumer), ended with the bundle's confirm.
            const spans = tracingOn() ? indexes.map((index) => startPublishSpan(exchange, messages[index].envelope.type, parts.get(index)!.options, parts.get(index)!.options.headers)) : [];
            const together = bundle([...parts.values()], this.appId);
            if (together.content.length <= this.maxBytes) {
              const failed = await this.publishRaw(exchange, routingKey, together.content, together.options).then(
                () => undefined,
                (error: Error) => error,
              );
              for (const span of spans) endSpan(span, failed);
              if (failed) indexes.forEach((index) => (outcomes[index] = failed));
              else this.sentTo(exchange).of(messages[indexes[0]].envelope.type).inc(indexes.length);
              return;
            }
            for (const span of spans) endSpan(span); // too large together: each part goes, with a span of its own, below
          }
        }
        // Alone, or too large together: each part is published (or refused) on its own.
        const results = await Promise.allSettled(indexes.map((index) => this.publish(exchange, routingKey, messages[index].envelope)));
        results.forEach((result, at) => result.status === 'rejected' && (outcomes[indexes[at]] = result.reason as Error));
      }),
    );
    return outcomes;
  }

  /** The message as it travels, checked as strictly as a consumer will read it: what none would take is not sent. */
  private encode(envelope: Envelope): OutgoingMessage {
    const problem = envelopeProblem(envelope);
    if (problem) throw new UnpublishableMessageError(`${envelope.type} ${envelope.messageId}: ${problem}`);
    const message = encode(envelope, this.appId);
    if (message.content.length > this.maxBytes) {
      throw new MessageTooLargeError(`${envelope.type} ${envelope.messageId}: a body of ${message.content.length} bytes is over MAX_MESSAGE_BYTES (${this.maxBytes})`);
    }
    return message;
  }

  /**
   * Publishes bytes as they are (used to move a message elsewhere, e.g. to a dead-letter queue).
   * `mandatory: false` only for answers to queries, whose asker may be gone.
   */
  async publishRaw(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
    const messageId = String(options.messageId);
    const mandatory = options.mandatory ?? true;
    await this.send(exchange, routingKey, content, { ...options, mandatory });
    // RabbitMQ sends basic.return before the confirm, so a returned message is known by now.
    if (this.returned.delete(messageId) && mandatory) {
      throw new UnroutableMessageError(`no queue is bound to ${exchange} for routing key ${routingKey} (message ${messageId})`);
    }
  }

  /** Resolves on the broker's confirm; rejects on its nack, or if the channel closes before the confirm. */
  private send(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
    const open = this.open;
    if (open) {
      let settle!: Settle;
      const confirmed = new Promise<void>((resolve, reject) => (settle = this.watch.track((error) => (error ? reject(error) : resolve()))));
      try {
        open.publish(exchange, routingKey, content, options, settle);
        return confirmed;
      } catch (error) {
        this.watch.forget(settle);
        // amqplib encodes the whole message before it writes: a throw means nothing was sent. Closed under
        // us, the wrapper sends it once reconnected; anything else is a message AMQP cannot carry.
        if ((error as Error).name !== 'IllegalOperationError') throw new UnpublishableMessageError(`AMQP cannot carry it: ${(error as Error).message}`);
        this.open = undefined;
      }
    }
    return this.channel.publish(exchange, routingKey, content, options).then(() => undefined);
  }

  waitForConnect(): Promise<void> {
    return this.channel.waitForConnect();
  }

  /** Whether a publish would go out now: connected, and not blocked by an alarm. */
  ready(): boolean {
    return this.open !== undefined && !this.blocked;
  }

  close(): Promise<void> {
    clearInterval(this.watchdog);
    return this.channel.close();
  }
}

