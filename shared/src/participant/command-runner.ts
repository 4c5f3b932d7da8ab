import type { EntityManager } from '@mikro-orm/postgresql';
import type { ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import type { CommandContract, ServiceName } from '../contracts/define.js';
import { causedBy, HEADERS, type Envelope } from '../contracts/envelope.js';
import type { FaultSpec } from '../contracts/fault-plan.js';
import { COMMANDS } from '../contracts/index.js';
import { failed, replyType, type StepReply } from '../contracts/replies.js';
import { flushLogsNow } from '../logging/logger.js';
import { decode } from '../messaging/codec.js';
import { DeadLetterError, isConnectionFailure, isTransactionConflict } from '../messaging/errors.js';
import type { Publisher } from '../messaging/publisher.js';
import { EXCHANGES } from '../topology/topology.js';
import { CommandContext } from './command-context.js';
import { attemptOf, injectedFault, InjectedTransientError, resendOf } from './fault-injection.js';
import { Inbox } from './inbox.js';

/** A service's handler for one command type: payload and context in, `succeeded(...)` or `failed(...)` out. */
export type CommandHandler = (payload: unknown, context: CommandContext) => Promise<unknown>;

export interface CommandRunnerOptions {
  service: ServiceName;
  em: EntityManager;
  publisher: Publisher;
  logger: Logger;
  /** Apply the fault plans commands carry (tests and demos only). */
  faultInjection: boolean;
  /** The service's handler for a command type, if it has one. */
  handlerFor(type: string): CommandHandler | undefined;
}

/** Rolls the handler's transaction back while carrying its failure reply out. */
class RollbackWith {
  constructor(readonly reply: StepReply) {}
}

/**
 * Runs a service's commands: inbox claim → handler → reply stored in the inbox, in one transaction; after
 * commit the reply is published (confirmed), and only then is the command acked (by the consumer).
 * Commands waiting together run as one batch (one transaction; savepoints only once a command fails).
 *
 * The inbox is this side's outbox: a crash after the commit leaves the command unacked, the broker
 * delivers it again, and the inbox answers it with the stored reply (same message id). So a reply is
 * never lost and never needs a relay, a poll or a second commit.
 */
export class CommandRunner {
  private readonly inbox: Inbox;

  constructor(private readonly options: CommandRunnerOptions) {
    this.inbox = new Inbox(options.service);
  }

  /**
   * Reads and checks a command, and applies the faults that act before its transaction. Null: swallowed
   * (a `no-reply` fault). Throws what the consumer must dead-letter or retry.
   */
  private async prepare(message: ConsumeMessage): Promise<Prepared | null> {
    const command = decode(message);
    const contract = COMMANDS.get(command.type);
    const handler = this.options.handlerFor(command.type);
    if (!contract || contract.service !== this.options.service || !handler) {
      throw new DeadLetterError('unknown-type', `${this.options.service} has no handler for ${command.type}`);
    }
    const parsed = contract.payload.safeParse(command.payload);
    if (!parsed.success) throw new DeadLetterError('invalid-payload', parsed.error.issues.map(describeIssue).join('; '));

    const log = this.options.logger.child({ sagaId: command.sagaId, messageId: command.messageId, type: command.type });
    const fault = injectedFault(command, this.options.faultInjection);
    if (fault?.['no-reply'] && resendOf(command) < fault['no-reply']) {
      log.warn({ fault }, 'fault injected: command swallowed, no reply');
      return null;
    }
    if (fault?.delay) await new Promise((resolve) => setTimeout(resolve, fault.delay));
    if (fault?.error && attemptOf(command) <= fault.error) {
      throw new InjectedTransientError(`injected transient error on attempt ${attemptOf(command)} (fails the first ${fault.error})`);
    }
    // Crash faults fire on the first delivery only: the redelivery after the restart goes through. After
    // commit, only a delivery that committed the command crashes (not a resend that finds it done).
    const crash = (point: 'crash-before-commit' | 'crash-after-commit') => {
      if (!fault?.[point] || message.fields.redelivered) return;
      log.warn({ fault: point }, 'fault injected: crashing');
      flushLogsNow();
      process.kill(process.pid, 'SIGKILL');
    };
    return { command, contract, payload: parsed.data, handler, fault, log, crash };
  }

  /** The handler's part, inside the caller's transaction: command in, local changes, reply out. */
  private async execute(em: EntityManager, { command, contract, payload, handler, fault, crash }: Prepared): Promise<StepReply> {
    if (fault?.fail) return failed('INJECTED_FAILURE', fault.fail === true ? 'injected permanent failure' : fault.fail);
    const result = await handler(payload, new CommandContext([em, command]));
    const reply = checkReply(contract.result, result as StepReply);
    crash('crash-before-commit');
    return reply;
  }

  /** After commit: publish the reply (confirmed); a duplicate gets the stored one again, in case the first was lost. */
  private async sendReply({ fault, log }: Prepared, reply: Envelope, duplicate: boolean): Promise<void> {
    await this.options.publisher.publish(EXCHANGES.replies, reply.type, reply);
    if (fault?.['duplicate-reply']) await this.options.publisher.publish(EXCHANGES.replies, reply.type, reply);
    if (duplicate) log.info({ reply: reply.type, replyId: reply.messageId }, 'duplicate command: reply sent again');
    else log.debug({ reply: reply.type, replyId: reply.messageId }, 'command handled');
  }

  /** One command: a batch of one (also the fallback when a batch fails as a whole). Throws what failed it. */
  async handleOne(message: ConsumeMessage): Promise<void> {
    const [error] = await this.handleBatch([message]);
    if (error) throw error;
  }

  /**
   * The commands in hand, in one transaction: one inbox claim for all, the handlers, the replies stored
   * with one statement, one commit; then the replies are published and the commands acked. Per command
   * that saves the begin, the commit and two inbox round trips.
   *
   * Most commands succeed, so the handlers first run side by side in the one unit of work (their entity
   * changes flushed together at the end). If one fails (a failure reply or an error), that attempt is
   * rolled back and the batch runs again with a savepoint per handler, so a failure undoes only its own
   * command's changes.
   */
  async handleBatch(messages: ConsumeMessage[]): Promise<(Error | undefined)[]> {
    const outcomes: (Error | undefined)[] = new Array(messages.length).fill(undefined);
    const work: Work[] = [];
    const prepared = await Promise.allSettled(messages.map((message) => this.prepare(message)));
    prepared.forEach((result, index) => {
      if (result.status === 'rejected') outcomes[index] = result.reason as Error;
      else if (result.value) work.push({ index, prepared: result.value });
    });
    if (work.length === 0) return outcomes;

    try {
      await this.runBatch(work, { savepoints: false });
    } catch (error) {
      if (isConnectionFailure(error) || isTransactionConflict(error)) throw error; // the whole batch again
      for (const item of work) item.reply = item.error = undefined;
      // A command alone that threw has nothing to keep: it fails as it is. Else (or to record its failure
      // reply) the batch runs again, each command in a savepoint.
      if (work.length === 1 && !(error instanceof RollbackWith)) work[0].error = error as Error;
      else await this.runBatch(work, { savepoints: true });
    }

    // Only where this delivery committed the command: a resend that finds it done must not crash again.
    for (const item of work) if (item.reply) item.prepared.crash('crash-after-commit');
    const duplicates = work.filter((item) => !item.reply && !item.error);
    const stored = await this.inbox.repliesTo(this.options.em.fork(), duplicates.map((item) => item.prepared.command.messageId));
    await Promise.all(
      work.map(async (item) => {
        if (item.error) return (outcomes[item.index] = item.error);
        const reply = item.reply ?? stored.get(item.prepared.command.messageId);
        if (!reply) return (outcomes[item.index] = new Error('duplicate command whose first delivery left no reply; retrying'));
        await this.sendReply(item.prepared, reply, !item.reply);
      }),
    );
    return outcomes;
  }

  /**
   * One transaction for the batch's commands. Without savepoints every handler must succeed (else it
   * throws, rolling back all); with them a failure reply or an error rolls back only its command.
   */
  private async runBatch(work: Work[], { savepoints }: { savepoints: boolean }): Promise<void> {
    await this.options.em.fork().transactional(async (tx) => {
      const claimed = await this.inbox.claimAll(tx, work.map((item) => item.prepared.command));
      const replies: { messageId: string; reply: Envelope }[] = [];
      const unclaim: string[] = [];
      for (const item of work) {
        const { command } = item.prepared;
        if (!claimed.delete(command.messageId)) continue; // processed before, or twice in this batch: a duplicate
        if (!savepoints) {
          const reply = await this.execute(tx, item.prepared);
          if (reply.outcome === 'failed') throw new RollbackWith(reply);
          item.reply = replyEnvelope(command, reply);
          replies.push({ messageId: command.messageId, reply: item.reply });
          continue;
        }
        try {
          const reply = await tx.transactional(async (savepoint) => {
            const reply = await this.execute(savepoint, item.prepared);
            if (reply.outcome === 'failed') throw new RollbackWith(reply);
            return reply;
          });
          item.reply = replyEnvelope(command, reply);
        } catch (error) {
          if (error instanceof RollbackWith) item.reply = replyEnvelope(command, error.reply);
          else if (isConnectionFailure(error) || isTransactionConflict(error)) throw error; // the whole batch again
          else {
            item.error = error as Error;
            unclaim.push(command.messageId);
            continue;
          }
        }
        replies.push({ messageId: command.messageId, reply: item.reply });
      }
      await this.inbox.unclaim(tx, unclaim);
      await this.inbox.recordReplies(tx, replies);
    });
  }
}

/** A command read, checked and ready to run. */
interface Prepared {
  command: Envelope;
  contract: CommandContract;
  payload: unknown;
  handler: CommandHandler;
  fault: FaultSpec | null;
  log: Logger;
  crash: (point: 'crash-before-commit' | 'crash-after-commit') => void;
}

/** A command of a batch: its place in the batch, and how it went. */
interface Work {
  index: number;
  prepared: Prepared;
  reply?: Envelope;
  error?: Error;
}

/** The reply envelope to a command, with how many attempts it took. */
function replyEnvelope(command: Envelope, reply: StepReply): Envelope {
  const contract = COMMANDS.get(command.type)!;
  const envelope = causedBy(command, replyType(contract, reply.outcome), reply.outcome === 'succeeded' ? reply.result : reply.failure);
  envelope.headers = attemptsOf(command);
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
