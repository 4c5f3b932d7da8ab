import type { ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import type { CommandContract, ServiceName } from '../contracts/define.js';
import { attemptOf, causedBy, HEADERS, resendOf, type Envelope } from '../contracts/envelope.js';
import { COMMANDS } from '../contracts/index.js';
import { replyType, type StepReply } from '../contracts/replies.js';
import type { Database, Tx } from '../database/database.js';
import { decode } from '../messaging/codec.js';
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
  /** Before the command's transaction: false swallows it (no effect, no reply); throwing fails this attempt. */
  before(command: Envelope, delivery: ConsumeMessage): Promise<boolean>;
  /** A reply to give instead of running the handler, or undefined. */
  instead(command: Envelope): StepReply | undefined;
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
}

/** Rolls a handler's changes back while carrying its refusal out. */
class RollbackWith {
  constructor(readonly reply: StepReply) {}
}

/** Commands found in the inbox when recording them: rolled back, then answered with their stored replies. */
class ProcessedBefore {
  constructor(readonly messageIds: Set<string>) {}
}

/**
 * Runs a service's commands: command in, local transaction, reply out. The commands in hand run as one
 * transaction: the handlers, then one inbox insert of every command with its reply, one commit. After the
 * commit the replies are published (confirmed), and only then are the commands acked (by the consumer).
 *
 * The inbox is this side's outbox: a crash after the commit leaves the command unacked, the broker
 * delivers it again, and the inbox answers it with the stored reply (same message id). So a reply is
 * never lost and never needs a relay, a poll or a second commit.
 */
export class CommandRunner {
  private readonly inbox: Inbox;
  private readonly duplicates = new PerType((type) => INBOX_DUPLICATES.bind(type));

  constructor(private readonly options: CommandRunnerOptions) {
    this.inbox = new Inbox(options.service);
  }

  /** One command: a batch of one (also the fallback when a batch fails as a whole). Throws what failed it. */
  async handleOne(message: ConsumeMessage): Promise<void> {
    const [error] = await this.handleBatch([message]);
    if (error) throw error;
  }

  /** The commands in hand; returns, per message, nothing (done: ack it) or what failed it. */
  async handleBatch(messages: ConsumeMessage[]): Promise<(Error | undefined)[]> {
    const outcomes: (Error | undefined)[] = new Array(messages.length).fill(undefined);
    const work: Work[] = [];
    const first = new Map<string, Work>();
    await Promise.all(
      messages.map(async (delivery, index) => {
        try {
          const command = this.read(delivery);
          if (this.options.middleware && !(await this.options.middleware.before(command.envelope, delivery))) return;
          const item: Work = { index, delivery, ...command };
          // Two deliveries of one message in a batch: the first runs, the other answers with its reply.
          const sibling = first.get(item.envelope.messageId);
          if (sibling) item.sameAs = sibling;
          else first.set(item.envelope.messageId, item);
          work.push(item);
        } catch (error) {
          outcomes[index] = error as Error;
        }
      }),
    );
    work.sort((a, b) => a.index - b.index);
    const runnable = work.filter((item) => !item.sameAs);
    if (runnable.length === 0) return outcomes;

    // A delivery that may repeat a processed command (redelivered, or sent again after a timeout) is looked
    // up first, so that its handler does not run in vain; the inbox insert stays the guard for the others.
    const suspects = runnable.filter((item) => item.delivery.fields.redelivered || resendOf(item.envelope) > 0);
    const stored = await this.inbox.repliesTo(this.options.db, suspects.map((item) => item.envelope.messageId));
    for (const item of runnable) if (stored.has(item.envelope.messageId)) item.processedBefore = true;

    await this.commit(runnable);
    for (const item of runnable) if (item.reply && !item.processedBefore) this.options.middleware?.afterCommit(item.envelope, item.delivery);
    const found = runnable.filter((item) => item.processedBefore && !stored.has(item.envelope.messageId)).map((item) => item.envelope.messageId);
    for (const [messageId, processed] of await this.inbox.repliesTo(this.options.db, found)) stored.set(messageId, processed);
    const answered: { item: Work; reply: Envelope; duplicate: boolean }[] = [];
    for (const item of work) {
      const source = item.sameAs ?? item;
      const processed = stored.get(item.envelope.messageId);
      const earlier = [item.sameAs?.bodyHash, source.processedBefore ? processed?.bodyHash : null];
      const reply = source.reply ?? processed?.reply;
      if (earlier.some((hash) => hash && hash !== item.bodyHash)) outcomes[item.index] = conflictingDuplicate(item.envelope);
      else if (source.error) outcomes[item.index] = source.error;
      else if (!reply) outcomes[item.index] = new Error('duplicate command whose first delivery left no reply; retrying');
      else answered.push({ item, reply, duplicate: source.processedBefore || item.sameAs !== undefined });
    }
    const failed = await this.sendReplies(answered);
    answered.forEach(({ item }, index) => (outcomes[item.index] ??= failed[index]));
    return outcomes;
  }

  /** Checks a command against its contract: what cannot be handled is dead-lettered, never retried. */
  private read(delivery: ConsumeMessage): Pick<Work, 'envelope' | 'contract' | 'payload' | 'handler' | 'bodyHash'> {
    const envelope = decode(delivery);
    const contract = COMMANDS.get(envelope.type);
    const handler = this.options.handlerFor(envelope.type);
    if (!contract || contract.service !== this.options.service || !handler) {
      throw new DeadLetterError('unknown-type', `${this.options.service} has no handler for ${envelope.type}`);
    }
    const parsed = contract.payload.safeParse(envelope.payload);
    if (!parsed.success) throw new DeadLetterError('invalid-payload', parsed.error.issues.map(describeIssue).join('; '));
    return { envelope, contract, payload: parsed.data, handler, bodyHash: bodyHashOf(envelope) };
  }

  /**
   * Runs the commands in one transaction. Most succeed, so the first try runs them side by side; a
   * refusal that wrote nothing keeps its place. If a handler throws, or refuses after writing, that try
   * is rolled back and the batch runs again with a savepoint per handler, so a failure undoes only its
   * own command. Commands the inbox has seen before are taken out and the rest run again.
   */
  private async commit(work: Work[]): Promise<void> {
    let savepoints = false;
    for (;;) {
      const pending = work.filter((item) => !item.processedBefore);
      if (pending.length === 0) return;
      for (const item of pending) item.reply = item.error = undefined;
      try {
        await this.options.db.transaction(async (tx) => {
          await this.run(tx, pending, savepoints);
          const done = pending.filter((item): item is Work & { reply: Envelope } => item.reply !== undefined);
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

  private async run(tx: Tx, work: Work[], savepoints: boolean): Promise<void> {
    for (const item of work) {
      if (!savepoints) {
        const written = tx.written;
        const reply = await this.execute(tx, item);
        if (reply.outcome === 'failed' && tx.written > written) throw new RollbackWith(reply);
        item.reply = replyEnvelope(item.envelope, reply);
        continue;
      }
      try {
        const reply = await tx.savepoint(async () => {
          const reply = await this.execute(tx, item);
          if (reply.outcome === 'failed') throw new RollbackWith(reply);
          return reply;
        });
        item.reply = replyEnvelope(item.envelope, reply);
      } catch (error) {
        if (error instanceof RollbackWith) item.reply = replyEnvelope(item.envelope, error.reply);
        else if (isConnectionFailure(error) || isTransactionConflict(error)) throw error;
        else item.error = error as Error;
      }
    }
  }

  /** The handler's part, inside the transaction: command in, local changes, reply out. */
  private async execute(tx: Tx, { envelope, contract, payload, handler }: Work): Promise<StepReply> {
    const instead = this.options.middleware?.instead(envelope);
    if (instead) return instead;
    return checkReply(contract.result, (await handler(payload, new CommandContext([tx, envelope]))) as StepReply);
  }

  /**
   * After commit: the replies, together (bundled if on), each confirmed; a duplicate gets the stored one
   * again, in case the first was lost. Per reply, nothing or why its publish failed.
   */
  private async sendReplies(answered: { item: Work; reply: Envelope; duplicate: boolean }[]): Promise<(Error | undefined)[]> {
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
  reply?: Envelope;
  error?: Error;
  /** The inbox had it: its stored reply is sent again. */
  processedBefore?: boolean;
  /** Another delivery of the same message in this batch, which runs in its place. */
  sameAs?: Work;
}

/** A message id used again for another command: answering it with the first one's reply would hide that. */
function conflictingDuplicate(command: Envelope): DeadLetterError {
  return new DeadLetterError('conflicting-duplicate', `message id ${command.messageId} was processed before with a different ${command.type} body`);
}

/** The reply envelope to a command, with how many attempts it took. */
function replyEnvelope(command: Envelope, reply: StepReply): Envelope {
  const contract = COMMANDS.get(command.type)!;
  const envelope = causedBy(command, replyType(contract, reply.outcome), reply.outcome === 'succeeded' ? reply.result : reply.failure);
  // The reply continues the command's trace (its processing span, when this process traces).
  envelope.headers = Object.assign(attemptsOf(command), traceCarrierOf(command.headers));
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
