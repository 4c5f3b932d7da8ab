import type { ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import type { CommandContract, ServiceName } from '../contracts/define.js';
import { attemptOf, causedBy, expiresAtOf, HEADERS, resendOf, workTimeoutOf, type Envelope } from '../contracts/envelope.js';
import { COMMANDS } from '../contracts/index.js';
import { replyType, type StepReply } from '../contracts/replies.js';
import { type Database, type Tx, TxShare } from '../database/database.js';
import { decode } from '../messaging/codec.js';
import type { Outcome } from '../messaging/consumer.js';
import { DeadLetterError, isConnectionFailure, isTransactionConflict } from '../messaging/errors.js';
import type { Publisher } from '../messaging/publisher.js';
import { envelopeLogFields } from '../logging/message-fields.js';
import { INBOX_DUPLICATES, PerType } from '../observability/metrics.js';
import { traceCarrierOf } from '../observability/tracing.js';
import { EXCHANGES } from '../topology/topology.js';
import { CommandContext } from './command-context.js';
import { bodyHashOf, Inbox, isProcessedBefore } from './inbox.js';

/** A service's handler for one command type: payload and context in, `succeeded(...)` or `failed(...)` out. */
export type CommandHandler = (payload: unknown, context: CommandContext) => Promise<unknown>;

/**
 * Behaviour wrapped around each command. Fault injection (tests and demos) is the one there is; the
 * production path has none, and so never reads a fault plan.
 */
export interface CommandMiddleware {
  /** Runs in the handler's place, inside the command's transaction: may wait, fail the attempt (throw), or answer instead. */
  around(command: Envelope, handle: () => Promise<StepReply>, delivery: ConsumeMessage): Promise<StepReply>;
  /** The command is done and recorded; its transaction is about to commit. */
  beforeCommit(command: Envelope, delivery: ConsumeMessage): void;
  /** This delivery committed the command; its reply is not published yet. */
  afterCommit(command: Envelope, delivery: ConsumeMessage): void;
  /** How many times to publish the reply. */
  replyCopies(command: Envelope): number;
}

export interface CommandRunnerOptions {
  service: ServiceName;
  db: Database;
  publisher: Publisher;
  logger: Logger;
  /** The service's handler for a command type, if it has one. */
  handlerFor(type: string): CommandHandler | undefined;
  middleware?: CommandMiddleware;
  /** A handler of a batch that works this long outside its statements is finished on its own (SLOW_HANDLER_MS). */
  slowHandlerMs: number;
}

/** Start-to-close for a command that carries no limit of its own (one sent before commands carried it). */
const DEFAULT_WORK_TIMEOUT_MS = 30_000;

/** Rolls a handler's changes back while carrying its refusal out. */
class RollbackWith {
  constructor(readonly reply: StepReply) {}
}

/** Commands found in the inbox when recording them: rolled back, then answered with their stored replies. */
class ProcessedBefore {
  constructor(readonly messageIds: Set<string>) {}
}

/** A handler over its time: taken out of the batch (which runs again without it if it had written), or, alone, its attempt given up. */
class TooSlow {
  constructor(
    readonly item: Work,
    readonly wrote: boolean,
  ) {}
}

/** Commands that expired while their batch ran: the batch runs again without them. */
class ExpiredMeanwhile {}

/** An attempt that outran its work timeout (start-to-close): it failed, and is retried with the step's back-off. */
export class WorkTimeoutError extends Error {}

/**
 * Runs a service's commands: command in, local transaction, reply out. The commands in hand run as one
 * transaction: the handlers, then one inbox insert of every command with its reply, one commit. After the
 * commit the replies are published (confirmed), and only then are the commands acked (by the consumer).
 *
 * The inbox is this side's outbox: a crash after the commit leaves the command unacked, the broker
 * delivers it again, and the inbox answers it with the stored reply (same message id). So a reply is
 * never lost and never needs a relay, a poll or a second commit.
 *
 * Time is bounded per command. A command the saga no longer wants (past its `x-expires-at`) is
 * dead-lettered as expired, unexecuted. A handler of a batch that is slow in its own code is finished on
 * its own, so the batch's other replies go out without it; alone, an attempt that outruns the command's
 * work timeout fails and is retried later.
 */
export class CommandRunner {
  private readonly inbox: Inbox;
  private readonly duplicates = new PerType((type) => INBOX_DUPLICATES.bind(type));

  constructor(private readonly options: CommandRunnerOptions) {
    this.inbox = new Inbox(options.service);
  }

  /**
   * One command on its own (the fallback when a batch fails as a whole, and a redelivery), bounded by its
   * work timeout. Throws what failed it.
   */
  async handleOne(message: ConsumeMessage): Promise<void> {
    const [outcome] = await this.handleBatch([message], true);
    const error = await outcome;
    if (error) throw error;
  }

  /**
   * The commands in hand; returns, per message, nothing (done: ack it), what failed it, or, for one taken out
   * of the batch because its handler is slow, a promise of either. `alone`: bounded by the work timeout instead.
   */
  async handleBatch(messages: ConsumeMessage[], alone = false): Promise<Outcome[]> {
    const outcomes: Outcome[] = new Array(messages.length).fill(undefined);
    const work: Work[] = [];
    const first = new Map<string, Work>();
    const now = Date.now();
    messages.forEach((delivery, index) => {
      try {
        const item: Work = { index, delivery, ...this.read(delivery, now) };
        // Two deliveries of one message in a batch: the first runs, the other answers with its reply.
        const sibling = first.get(item.envelope.messageId);
        if (sibling) item.sameAs = sibling;
        else first.set(item.envelope.messageId, item);
        work.push(item);
      } catch (error) {
        outcomes[index] = error as Error;
      }
    });
    const results = await this.process(work, alone);
    work.forEach((item, at) => (outcomes[item.index] = results[at]));
    return outcomes;
  }

  /** Runs read commands (in one transaction), answers them, and says per command how it went. */
  private async process(work: Work[], alone: boolean): Promise<Outcome[]> {
    const outcomes = new Map<Work, Outcome>();
    const runnable = work.filter((item) => !item.sameAs);
    if (runnable.length === 0) return [];

    // A delivery that may repeat a processed command (redelivered, or sent again) is looked up first, so
    // that its handler does not run in vain; the inbox insert stays the guard for the others.
    const suspects = runnable.filter((item) => item.delivery.fields.redelivered || resendOf(item.envelope) > 0);
    const stored = await this.inbox.repliesTo(this.options.db, suspects.map((item) => item.envelope.messageId));
    for (const item of runnable) if (stored.has(item.envelope.messageId)) item.processedBefore = true;

    await this.commit(runnable, alone);
    for (const item of runnable) if (item.reply && !item.processedBefore) this.options.middleware?.afterCommit(item.envelope, item.delivery);
    const found = runnable.filter((item) => item.processedBefore && !stored.has(item.envelope.messageId)).map((item) => item.envelope.messageId);
    for (const [messageId, processed] of await this.inbox.repliesTo(this.options.db, found)) stored.set(messageId, processed);
    const answered: { item: Work; reply: Envelope; duplicate: boolean }[] = [];
    const later = new Map<Work, Promise<Error | undefined>>();
    for (const item of work) {
      const source = item.sameAs ?? item;
      if (source.spunOff) {
        // Finished on its own (its handler is slow); a second delivery of it settles with it.
        if (!later.has(source)) later.set(source, this.process([resetFor(source)], true).then(([outcome]) => outcome));
        outcomes.set(item, later.get(source)!);
        continue;
      }
      const processed = stored.get(item.envelope.messageId);
      const earlier = [item.sameAs?.bodyHash, source.processedBefore ? processed?.bodyHash : null];
      const reply = source.reply ?? processed?.reply;
      if (source.expired) outcomes.set(item, expired(item.envelope));
      else if (earlier.some((hash) => hash && hash !== item.bodyHash)) outcomes.set(item, conflictingDuplicate(item.envelope));
      else if (source.error) outcomes.set(item, source.error);
      else if (!reply) outcomes.set(item, new Error('duplicate command whose first delivery left no reply; retrying'));
      else answered.push({ item, reply, duplicate: source.processedBefore || item.sameAs !== undefined });
    }
    const failed = await this.sendReplies(answered);
    answered.forEach(({ item }, index) => outcomes.set(item, failed[index]));
    return work.map((item) => outcomes.get(item));
  }

  /** Checks a command against its contract: what cannot be handled is dead-lettered, never retried; one past its expiry too. */
  private read(delivery: ConsumeMessage, now: number): Omit<Work, 'index' | 'delivery'> {
    const envelope = decode(delivery);
    const contract = COMMANDS.get(envelope.type);
    const handler = this.options.handlerFor(envelope.type);
    if (!contract || contract.service !== this.options.service || !handler) {
      throw new DeadLetterError('unknown-type', `${this.options.service} has no handler for ${envelope.type}`);
    }
    const parsed = contract.payload.safeParse(envelope.payload);
    if (!parsed.success) throw new DeadLetterError('invalid-payload', parsed.error.issues.map(describeIssue).join('; '));
    const expiresAt = expiresAtOf(envelope);
    if (expiresAt !== null && expiresAt <= now) throw expired(envelope);
    const startedAt = (envelope.headers?.[HEADERS.startedAt] as number | undefined) ?? now;
    return { envelope, contract, payload: parsed.data, handler, bodyHash: bodyHashOf(envelope), expiresAt, startedAt };
  }

  /**
   * Runs the commands in one transaction. Most succeed, so the first try runs them side by side; a
   * refusal that wrote nothing keeps its place. If a handler throws, or refuses after writing, that try
   * is rolled back and the batch runs again with a savepoint per handler, so a failure undoes only its
   * own command. Commands the inbox has seen before are taken out and the rest run again; so are those that
   * expired meanwhile, and a slow handler that had written. `alone`: one command, bounded by its work timeout.
   */
  private async commit(work: Work[], alone: boolean): Promise<void> {
    let savepoints = false;
    for (;;) {
      const pending = work.filter((item) => !item.processedBefore && !item.spunOff && !item.expired);
      if (pending.length === 0) return;
      for (const item of pending) item.reply = item.error = undefined;
      try {
        await this.options.db.transaction(async (tx) => {
          await this.run(tx, pending, savepoints, alone);
          const done = pending.filter((item): item is Work & { reply: Envelope } => item.reply !== undefined);
          // Past its expiry while it ran (the process was stopped, say): the saga has given it up, so it must not commit.
          const now = Date.now();
          const late = done.filter((item) => item.expiresAt !== null && item.expiresAt <= now);
          if (late.length) {
            for (const item of late) item.expired = true;
            throw new ExpiredMeanwhile();
          }
          for (const item of done) this.options.middleware?.beforeCommit(item.envelope, item.delivery);
          try {
            await this.inbox.recordAndCommit(tx, done.map((item) => ({ command: item.envelope, reply: item.reply, bodyHash: item.bodyHash })));
          } catch (error) {
            if (!isProcessedBefore(error)) throw error;
            // Rolled back: find which of them the inbox holds (committed by the delivery that beat this one).
            const found = await this.inbox.repliesTo(this.options.db, done.map((item) => item.envelope.messageId));
            if (found.size === 0) throw new Error('the inbox refused a command it does not hold; retrying');
            throw new ProcessedBefore(new Set(found.keys()));
          }
        });
        return;
      } catch (error) {
        if (error instanceof ProcessedBefore) {
          for (const item of pending) {
            if (!error.messageIds.has(item.envelope.messageId)) continue;
            item.processedBefore = true;
            item.reply = undefined; // rolled back: the stored reply is the one to send
          }
          continue;
        }
        if (error instanceof ExpiredMeanwhile) continue;
        if (error instanceof TooSlow) {
          if (!alone) {
            error.item.spunOff = true;
            continue;
          }
          const limit = workTimeoutOf(error.item.envelope, DEFAULT_WORK_TIMEOUT_MS);
          error.item.error = new WorkTimeoutError(`WORK_TIMEOUT: ${error.item.envelope.type} did not finish within ${limit} ms; this attempt is given up`);
          return;
        }
        if (isConnectionFailure(error) || isTransactionConflict(error) || savepoints) throw error; // the whole batch again
        // A command alone that threw has nothing to keep: it fails as it is.
        if (pending.length === 1 && !(error instanceof RollbackWith)) {
          pending[0].error = error as Error;
          return;
        }
        savepoints = true;
      }
    }
  }

  private async run(tx: Tx, work: Work[], savepoints: boolean, alone: boolean): Promise<void> {
    for (const item of work) {
      if (!savepoints) {
        const share = new TxShare(tx);
        let reply: StepReply;
        try {
          reply = await this.execute(share, item, alone);
        } catch (error) {
          // Slow before it wrote anything: it leaves the batch, which goes on without it.
          if (error instanceof TooSlow && !error.wrote && !alone) {
            item.spunOff = true;
            continue;
          }
          throw error;
        }
        if (reply.outcome === 'failed' && share.written > 0) throw new RollbackWith(reply);
        item.reply = replyEnvelope(item, reply);
        continue;
      }
      try {
        const reply = await tx.savepoint(async () => {
          const reply = await this.execute(new TxShare(tx), item, alone);
          if (reply.outcome === 'failed') throw new RollbackWith(reply);
          return reply;
        });
        item.reply = replyEnvelope(item, reply);
      } catch (error) {
        if (error instanceof RollbackWith) item.reply = replyEnvelope(item, error.reply);
        else if (isConnectionFailure(error) || isTransactionConflict(error) || error instanceof TooSlow) throw error;
        else item.error = error as Error;
      }
    }
  }

  /**
   * The handler's part, inside the transaction: command in, local changes, reply out. Timed: in a batch, a
   * handler that spends SLOW_HANDLER_MS outside its statements is cut loose; alone, one that outruns the
   * command's work timeout is. Time spent in a statement is the database's, and waits for it.
   */
  private async execute(share: TxShare, item: Work, alone: boolean): Promise<StepReply> {
    const { envelope, contract, payload, handler, delivery } = item;
    const handle = async () => checkReply(contract.result, (await handler(payload, new CommandContext([share, envelope]))) as StepReply);
    const running = this.options.middleware ? this.options.middleware.around(envelope, handle, delivery) : handle();
    const limitMs = alone ? workTimeoutOf(envelope, DEFAULT_WORK_TIMEOUT_MS) : this.options.slowHandlerMs;
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const overdue = new Promise<'overdue'>((resolve) => (timer = setTimeout(resolve, limitMs, 'overdue')));
      const first = await Promise.race([running, overdue]).finally(() => clearTimeout(timer));
      if (first !== 'overdue') return first;
      if (share.running > 0) continue;
      share.cutLoose(`${envelope.type} ${envelope.messageId} was cut loose after ${limitMs} ms`);
      running.catch(() => undefined); // it fails at its next statement, if it ever gets there
      this.options.logger.warn({ ...envelopeLogFields(envelope), limitMs, alone }, alone ? 'handler outran its work timeout; attempt given up' : 'slow handler; finishing it on its own');
      throw new TooSlow(item, share.written > 0);
    }
  }

  /**
   * After commit: the replies, together (bundled if on), each confirmed; a duplicate gets the stored one
   * again, in case the first was lost. Per reply, nothing or why its publish failed.
   */
  private async sendReplies(answered: { item: Work; reply: Envelope; duplicate: boolean }[]): Promise<(Error | undefined)[]> {
    if (answered.length === 0) return [];
    const { publisher, logger, middleware } = this.options;
    const copies = answered.map(({ item }) => middleware?.replyCopies(item.envelope) ?? 1);
    // A reply sent again from the inbox continues this delivery's trace, not the first one's.
    for (const { item, reply, duplicate } of answered) if (duplicate) Object.assign((reply.headers ??= {}), traceCarrierOf(item.envelope.headers));
    const sent = answered.flatMap(({ reply }, index) => Array.from({ length: copies[index] }, () => ({ exchange: EXCHANGES.replies, routingKey: reply.type, envelope: reply })));
    const results = await publisher.publishAll(sent);
    let next = 0;
    return answered.map(({ item: { envelope }, reply, duplicate }, index) => {
      const error = results.slice(next, (next += copies[index])).find(Boolean);
      if (error) return error;
      if (duplicate) {
        this.duplicates.of(envelope.type).inc();
        logger.info({ ...envelopeLogFields(envelope), replyId: reply.messageId }, 'duplicate command: reply sent again');
      } else if (logger.isLevelEnabled('debug')) {
        logger.debug({ ...envelopeLogFields(envelope), reply: reply.type }, 'command handled');
      }
      return undefined;
    });
  }
}

/** A command of a batch: read and checked, and how it went. */
interface Work {
  index: number;
  delivery: ConsumeMessage;
  envelope: Envelope;
  contract: CommandContract;
  payload: unknown;
  handler: CommandHandler;
  /** What tells this command from another that uses the same message id (see bodyHashOf). */
  bodyHash: string;
  /** When the saga stops wanting it (epoch ms), or null. */
  expiresAt: number | null;
  /** When this participant first took it from its queue (epoch ms; kept across its retries). */
  startedAt: number;
  reply?: Envelope;
  error?: Error;
  /** The inbox had it: its stored reply is sent again. */
  processedBefore?: boolean;
  /** Another delivery of the same message in this batch, which runs in its place. */
  sameAs?: Work;
  /** Its handler was slow: taken out of the batch, finished on its own. */
  spunOff?: boolean;
  /** It expired while its batch ran: not committed. */
  expired?: boolean;
}

/** A command taken out of its batch, ready to run on its own. */
const resetFor = (item: Work): Work => ({ ...item, spunOff: false, reply: undefined, error: undefined, sameAs: undefined });

/** A command the saga no longer wants: dead-lettered unexecuted, with when it expired. */
const expired = (command: Envelope): DeadLetterError =>
  new DeadLetterError('expired', `${command.type} expired at ${new Date(expiresAtOf(command)!).toISOString()} (its saga's deadline): not executed`);

/** A message id used again for another command: answering it with the first one's reply would hide that. */
function conflictingDuplicate(command: Envelope): DeadLetterError {
  return new DeadLetterError('conflicting-duplicate', `message id ${command.messageId} was processed before with a different ${command.type} body`);
}

/** The reply envelope to a command, with how many attempts it took, when its work started and how long it took. */
function replyEnvelope({ envelope: command, startedAt }: Work, reply: StepReply): Envelope {
  const contract = COMMANDS.get(command.type)!;
  const envelope = causedBy(command, replyType(contract, reply.outcome), reply.outcome === 'succeeded' ? reply.result : reply.failure);
  // The reply continues the command's trace (its processing span, when this process traces).
  envelope.headers = Object.assign(attemptsOf(command), { [HEADERS.startedAt]: startedAt, [HEADERS.workMs]: Math.max(0, Date.now() - startedAt) }, traceCarrierOf(command.headers));
  return envelope;
}

/** Tells the orchestrator how many attempts the command took, and when the failed ones failed. */
function attemptsOf(command: Envelope): Record<string, string | number> {
  const failures = command.headers?.[HEADERS.failures];
  return { [HEADERS.attempts]: attemptOf(command), ...(failures ? { [HEADERS.failures]: failures } : {}) };
}

function checkReply(resultSchema: { safeParse(value: unknown): { success: boolean; error?: unknown } }, reply: StepReply): StepReply {
  if (reply?.outcome === 'failed') return reply;
  if (reply?.outcome !== 'succeeded') throw new Error('participant handler must return succeeded(...) or failed(...)');
  const checked = resultSchema.safeParse(reply.result);
  if (!checked.success) throw new Error(`participant reply breaks its contract: ${String(checked.error)}`);
  return reply;
}

export const describeIssue = (issue: { path: PropertyKey[]; message: string }) =>
  `${issue.path.length ? issue.path.join('.') : '(body)'}: ${issue.message}`;
