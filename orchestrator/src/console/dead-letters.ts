import type { OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { ConfirmChannel, GetMessage, MessagePropertyHeaders } from 'amqplib';
import { Broker, buildTopology, counterHeader, EXCHANGES, HEADERS, isId, ownerOfQueue } from '@sagaflow/shared';
import { z } from 'zod';
import { env, logger } from '../config.js';

/** A dead letter as the console shows it. */
export const DeadLetter = z.strictObject({
  messageId: z.string(),
  /** The `.dlq` it waits in, and the queue it came from (where a replay sends it). */
  queue: z.string(),
  originalQueue: z.string(),
  type: z.string().nullable(),
  sagaId: z.string().nullable(),
  reason: z.string().nullable(),
  error: z.string().nullable(),
  attempts: z.number().int().nullable(),
  firstFailureAt: z.string().nullable(),
  lastFailureAt: z.string().nullable(),
  deadLetteredAt: z.string().nullable(),
});
export type DeadLetter = z.infer<typeof DeadLetter>;

const TOPOLOGY = buildTopology(env.QUEUE_TYPE);
export const DEAD_LETTER_QUEUES = TOPOLOGY.queues.filter((queue) => queue.role === 'dead-letter').map((queue) => queue.name);
const WORK_QUEUES = TOPOLOGY.queues.filter((queue) => queue.role === 'work').map((queue) => queue.name);
/** Where nothing is dropped: the dead-letter queues and the unroutable queue, whose depths are watched. */
const PARKING_QUEUES = TOPOLOGY.queues.filter((queue) => queue.role === 'dead-letter' || queue.role === 'unroutable').map((queue) => queue.name);

/** A page of dead letters: where the next one starts (`<queue>:<position>`), and every parking queue's depth. */
export const DeadLetterPage = z.strictObject({ deadLetters: z.array(DeadLetter), nextCursor: z.string().nullable(), depths: z.record(z.string(), z.number().int()) });
export type DeadLetterPage = z.infer<typeof DeadLetterPage>;
/** What a replay or a discard did; `notFound`: ids no `.dlq` holds (any more). */
export const Replayed = z.strictObject({ replayed: z.array(DeadLetter), notFound: z.array(z.string()) });
export const Discarded = z.strictObject({ discarded: z.array(DeadLetter), notFound: z.array(z.string()) });

/** Headers that describe the dead-lettering, dropped when the message is replayed. */
const DEAD_LETTER_HEADERS: string[] = [
  HEADERS.deadLetterReason,
  HEADERS.deadLetterError,
  HEADERS.originalQueue,
  HEADERS.deadLetteredAt,
  HEADERS.deadLetteredBy,
  HEADERS.attempts,
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
];

/**
 * Dead letters stay in the `.dlq` queues (visible in the management UI) until a person handles them. To
 * look, the console takes every one on a channel of its own and gives back what it did not handle by
 * closing the channel (unacked messages return to their queue). A replay publishes the message to its
 * original queue, waits for the broker's confirm, and only then removes it from the `.dlq`: nothing is lost,
 * and a replay repeated finds nothing left to send (the participant's inbox would dedupe it anyway).
 * Operations run one at a time.
 *
 * The queues have no length limit: a full `.dlq` would refuse or drop what comes next. Instead their depths
 * are watched, and past DEAD_LETTER_ALERT_DEPTH the orchestrator says so at error level until they are handled.
 */
export class DeadLetters implements OnApplicationBootstrap, OnApplicationShutdown {
  private queue: Promise<unknown> = Promise.resolve();
  private watch?: NodeJS.Timeout;

  constructor(private readonly broker: Broker) {}

  onApplicationBootstrap(): void {
    this.watch = setInterval(() => void this.checkDepths(), env.DEAD_LETTER_CHECK_MS).unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.watch);
  }

  /**
   * Up to `limit` dead letters from `cursor` on (or the first), headers only. Reads each queue in order only
   * as far as the page's end, never the whole backlog; `queue` keeps to one `.dlq`.
   */
  page(limit: number, cursor?: { queue: string; position: number }, only?: string): Promise<DeadLetterPage> {
    return this.exclusively(async (channel) => {
      const depths = await this.depthsOn(channel);
      const queues = only ? [only] : DEAD_LETTER_QUEUES;
      const deadLetters: DeadLetter[] = [];
      let index = Math.max(0, cursor ? queues.indexOf(cursor.queue) : 0);
      let skip = cursor && queues[index] === cursor.queue ? cursor.position : 0;
      for (; index < queues.length; index++, skip = 0) {
        const queue = queues[index];
        let position = 0;
        while (deadLetters.length < limit) {
          const message = await channel.get(queue, { noAck: false });
          if (!message) break;
          if (position++ >= skip) deadLetters.push(view(Object.assign(message, { queue })));
        }
        if (deadLetters.length < limit) continue;
        // A full page: the next starts later in this queue, or at the next queue that holds any.
        const later = position < depths[queue] ? queue : queues.slice(index + 1).find((candidate) => depths[candidate] > 0);
        return { deadLetters, nextCursor: later ? `${later}:${later === queue ? position : 0}` : null, depths };
      }
      return { deadLetters, nextCursor: null, depths };
    });
  }

  /** How many messages wait in each `.dlq` and in the unroutable queue (no message is read). */
  depths(): Promise<Record<string, number>> {
    return this.exclusively((channel) => this.depthsOn(channel));
  }

  private async depthsOn(channel: ConfirmChannel): Promise<Record<string, number>> {
    const depths: Record<string, number> = {};
    for (const queue of PARKING_QUEUES) depths[queue] = (await channel.checkQueue(queue)).messageCount;
    return depths;
  }

  /** Loud, not lossy: queues past the alert depth are named at error level on every check until handled. */
  private async checkDepths(): Promise<void> {
    try {
      const over = Object.entries(await this.depths()).filter(([, depth]) => depth >= env.DEAD_LETTER_ALERT_DEPTH);
      if (over.length) logger.error({ queues: Object.fromEntries(over), alertDepth: env.DEAD_LETTER_ALERT_DEPTH }, 'dead letters piling up: handle them in the console');
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'dead-letter depth check failed; will retry');
    }
  }

  /** Sends the chosen dead letters (all of them when `messageIds` is 'all') back to their original queue. */
  replay(messageIds: string[] | 'all'): Promise<z.infer<typeof Replayed>> {
    return this.exclusively(async (channel) => {
      const { chosen, notFound } = choose(await this.take(channel, messageIds), messageIds);
      const returned = new Set<string>();
      channel.on('return', (message) => returned.add(String(message.properties.messageId)));
      for (const message of chosen) {
        const { headers = {} } = message.properties;
        const kept: MessagePropertyHeaders = Object.fromEntries(Object.entries(headers).filter(([name]) => !DEAD_LETTER_HEADERS.includes(name)));
        const attempts = attemptsSoFar(headers);
        // Through the owner's requeue exchange, which reaches its work queues only; a letter naming any other stays.
        const { originalQueue } = view(message);
        const owner = WORK_QUEUES.includes(originalQueue) ? ownerOfQueue(originalQueue) : undefined;
        if (!owner) {
          returned.add(String(message.properties.messageId));
          continue;
        }
        channel.publish(EXCHANGES.requeueOf(owner), originalQueue, message.content, {
          messageId: message.properties.messageId,
          type: message.properties.type,
          correlationId: message.properties.correlationId,
          contentType: message.properties.contentType,
          appId: message.properties.appId,
          persistent: true,
          mandatory: true,
          headers: { ...kept, [HEADERS.attempt]: attempts + 1, [HEADERS.retryBase]: attempts, [HEADERS.replayedAt]: new Date().toISOString() },
        });
      }
      await channel.waitForConfirms();
      // Only what the broker took and routed leaves the .dlq.
      const replayed = chosen.filter((message) => !returned.has(String(message.properties.messageId)));
      for (const message of replayed) channel.ack(message);
      return { replayed: replayed.map(view), notFound };
    });
  }

  /** Removes the chosen dead letters for good. */
  discard(messageIds: string[]): Promise<z.infer<typeof Discarded>> {
    return this.exclusively(async (channel) => {
      const { chosen, notFound } = choose(await this.take(channel, messageIds), messageIds);
      for (const message of chosen) channel.ack(message);
      return { discarded: chosen.map(view), notFound };
    });
  }

  /** Takes dead letters (on this channel, unacked) until every one asked for is in hand, or all of them for 'all'. */
  private async take(channel: ConfirmChannel, messageIds: string[] | 'all'): Promise<(GetMessage & { queue: string })[]> {
    const taken: (GetMessage & { queue: string })[] = [];
    const missing = new Set(messageIds === 'all' ? [] : messageIds);
    for (const queue of DEAD_LETTER_QUEUES) {
      for (let message = await channel.get(queue, { noAck: false }); message; message = await channel.get(queue, { noAck: false })) {
        taken.push(Object.assign(message, { queue }));
        missing.delete(String(message.properties.messageId));
        if (messageIds !== 'all' && missing.size === 0) return taken;
      }
    }
    return taken;
  }

  private exclusively<T>(work: (channel: ConfirmChannel) => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      const connection = this.broker.connection.connection;
      if (!connection) throw new Error('not connected to RabbitMQ');
      const channel = await connection.createConfirmChannel();
      try {
        return await work(channel);
      } finally {
        // Whatever was taken and not acked goes back to its queue.
        await channel.close().catch(() => undefined);
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function choose(messages: (GetMessage & { queue: string })[], messageIds: string[] | 'all') {
  const chosen = messageIds === 'all' ? messages : messages.filter((message) => messageIds.includes(String(message.properties.messageId)));
  const found = new Set(chosen.map((message) => String(message.properties.messageId)));
  return { chosen, notFound: messageIds === 'all' ? [] : messageIds.filter((id) => !found.has(id)) };
}

function view(message: GetMessage & { queue: string }): DeadLetter {
  const headers = message.properties.headers ?? {};
  const text = (name: string) => (headers[name] === undefined ? null : String(headers[name]));
  return {
    messageId: String(message.properties.messageId),
    queue: message.queue,
    originalQueue: text(HEADERS.originalQueue) ?? message.queue.replace(/\.dlq$/, ''),
    type: message.properties.type ?? null,
    // Only a real saga id: a malformed letter's header may hold anything, and the console looks sagas up by it.
    sagaId: isId(headers[HEADERS.sagaId]) ? headers[HEADERS.sagaId] : null,
    reason: text(HEADERS.deadLetterReason) ?? text('x-first-death-reason'),
    error: text(HEADERS.deadLetterError),
    attempts: headers[HEADERS.attempts] === undefined ? null : Number(headers[HEADERS.attempts]),
    firstFailureAt: text(HEADERS.firstFailureAt),
    lastFailureAt: text(HEADERS.lastFailureAt),
    deadLetteredAt: text(HEADERS.deadLetteredAt),
  };
}

/** The attempts a letter took; a letter refused for a bad counter still carries it, and its replay counts from 0. */
function attemptsSoFar(headers: MessagePropertyHeaders): number {
  try {
    return counterHeader(headers, HEADERS.attempts, counterHeader(headers, HEADERS.attempt, 0));
  } catch {
    return 0;
  }
}
