import type { EntityManager } from '@mikro-orm/postgresql';
import { Server, type CustomTransportStrategy, type MessageHandler } from '@nestjs/microservices';
import type { ConsumeMessage } from 'amqplib';
import { lastValueFrom } from 'rxjs';
import type { Logger } from 'pino';
import { COMMANDS, QUERIES } from '../contracts/index.js';
import type { CommandContract, ServiceName } from '../contracts/define.js';
import type { FaultSpec } from '../contracts/fault-plan.js';
import { causedBy, HEADERS, type Envelope } from '../contracts/envelope.js';
import { failed, replyType, type StepReply } from '../contracts/replies.js';
import { decode, MalformedMessageError } from '../messaging/codec.js';
import { DeadLetterError, isConnectionFailure, isTransactionConflict } from '../messaging/errors.js';
import type { Consumer } from '../messaging/consumer.js';
import { EXCHANGES, QUEUES } from '../topology/topology.js';
import type { Broker } from '../runtime/broker.js';
import { CommandContext, QueryContext } from './command-context.js';
import { attemptOf, injectedFault, InjectedTransientError, resendOf } from './fault-injection.js';
import { Inbox } from './inbox.js';

export interface ParticipantServerOptions {
  service: ServiceName;
  broker: Broker;
  em: EntityManager;
  logger: Logger;
  /** Apply the fault plans commands carry (tests and demos only). */
  faultInjection: boolean;
}

/** Rolls the handler's transaction back while carrying its failure reply out. */
class RollbackWith {
  constructor(readonly reply: StepReply) {}
}

/**
 * A NestJS transport for saga participants. Handlers are plain `@MessagePattern('<service>.<verb>')`
 * methods; for each command this server runs, in one transaction: inbox claim → handler → reply recorded
 * in the inbox. After commit it publishes the reply (confirmed), and only then is the command acked.
 *
 * The inbox is this side's outbox: a crash after the commit leaves the command unacked, the broker
 * delivers it again, and the inbox answers it with the stored reply (same message id). So a reply is
 * never lost and never needs a relay, a poll or a second commit.
 * Queries (`@MessagePattern` on a query type) are answered on the request's reply-to.
 */
export class ParticipantServer extends Server implements CustomTransportStrategy {
  private readonly inbox: Inbox;
  private readonly consumers: Consumer[] = [];
  private readonly handlers = new Map<string, ReturnType<Server['getHandlerByPattern']>>();

  constructor(private readonly options: ParticipantServerOptions) {
    super();
    this.inbox = new Inbox(options.service);
  }

  async listen(callback: () => void): Promise<void> {
    const { broker, service } = this.options;
    this.consumers.push(
      broker.consume(QUEUES.commandsOf(service), (message) => this.handleCommand(message), { batch: (messages) => this.handleCommands(messages) }),
    );
    const answersQueries = [...QUERIES.values()].some((query) => query.service === service && this.getHandlerByPattern(query.type));
    if (answersQueries) this.consumers.push(broker.consume(QUEUES.queriesOf(service), (message) => this.handleQuery(message), { retries: false }));
    await Promise.all(this.consumers.map((consumer) => consumer.waitForConnect()));
    callback();
  }

  /** Graceful stop: finish the messages in hand (each one's reply is published before its ack). */
  async close(): Promise<void> {
    await Promise.all(this.consumers.map((consumer) => consumer.close()));
  }

  on(): never {
    throw new Error('ParticipantServer has no events');
  }
  unwrap<T>(): T {
    return this.options.broker as T;
  }

  /** Nest's lookup parses the pattern on every call; the handlers are fixed once listening, so look each type up once. */
  private handlerFor(type: string) {
    if (!this.handlers.has(type)) this.handlers.set(type, this.getHandlerByPattern(type));
    return this.handlers.get(type);
  }

  /**
   * Reads and checks a command, and applies the faults that act before its transaction. Null: swallowed
   * (a `no-reply` fault). Throws what the consumer must dead-letter or retry.
   */
  private async prepare(message: ConsumeMessage): Promise<Prepared | null> {
    const command = decode(message);
    const contract = COMMANDS.get(command.type);
    const handler = this.handlerFor(command.type);
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
    // Crash faults fire on the first delivery only: the redelivery after the restart goes through.
    const crash = (point: 'crash-before-commit' | 'crash-after-commit') => {
      if (!fault?.[point] || message.fields.redelivered) return;
      log.warn({ fault: point }, 'fault injected: crashing');
      process.kill(process.pid, 'SIGKILL');
    };
    return { command, contract, payload: parsed.data, handler, fault, log, crash };
  }

  /** The handler's part, inside the caller's transaction: command in, local changes, reply out. */
  private async execute(em: EntityManager, { command, contract, payload, handler, fault, crash }: Prepared): Promise<StepReply> {
    if (fault?.fail) return failed('INJECTED_FAILURE', fault.fail === true ? 'injected permanent failure' : fault.fail);
    const result = await lastValueFrom(this.transformToObservable(await handler(payload, new CommandContext([em, command]))));
    const reply = checkReply(contract.result, result as StepReply);
    crash('crash-before-commit');
    return reply;
  }

  /** After commit: publish the reply (confirmed); a duplicate gets the stored one again, in case the first was lost. */
  private async sendReply({ fault, log }: Prepared, reply: Envelope, duplicate: boolean): Promise<void> {
    await this.options.broker.publisher.publish(EXCHANGES.replies, reply.type, reply);
    if (fault?.['duplicate-reply']) await this.options.broker.publisher.publish(EXCHANGES.replies, reply.type, reply);
    if (duplicate) log.info({ reply: reply.type, replyId: reply.messageId }, 'duplicate command: reply sent again');
    else log.debug({ reply: reply.type, replyId: reply.messageId }, 'command handled');
  }

  /** One command, one transaction (also the fallback when a batch fails as a whole). */
  private async handleCommand(message: ConsumeMessage): Promise<void> {
    const prepared = await this.prepare(message);
    if (!prepared) return;
    const { reply, duplicate } = await this.runOnce(prepared.command, (em) => this.execute(em, prepared));
    prepared.crash('crash-after-commit');
    await this.sendReply(prepared, reply, duplicate);
  }

  /**
   * The commands in hand, in one transaction: one inbox claim for all, each handler in a savepoint (a
   * failure reply or an error rolls back that command's changes only), the replies stored with one
   * statement, one commit; then the replies are published and the commands acked. Per command that saves
   * the begin, the commit and two inbox round trips.
   */
  private async handleCommands(messages: ConsumeMessage[]): Promise<(Error | undefined)[]> {
    if (messages.length === 1) return [await this.handleAlone(messages[0])];
    const outcomes: (Error | undefined)[] = new Array(messages.length).fill(undefined);
    const work: Work[] = [];
    const prepared = await Promise.allSettled(messages.map((message) => this.prepare(message)));
    prepared.forEach((result, index) => {
      if (result.status === 'rejected') outcomes[index] = result.reason as Error;
      else if (result.value) work.push({ index, prepared: result.value });
    });
    if (work.length === 0) return outcomes;

    await this.options.em.fork().transactional(async (tx) => {
      const claimed = await this.inbox.claimAll(tx, work.map((item) => item.prepared.command));
      const replies: { messageId: string; reply: Envelope }[] = [];
      const unclaim: string[] = [];
      for (const item of work) {
        const { command } = item.prepared;
        if (!claimed.delete(command.messageId)) continue; // processed before, or twice in this batch: a duplicate
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

    for (const item of work) item.prepared.crash('crash-after-commit');
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

  /** A batch of one takes the single path: no savepoint needed. Outages still fail the batch (waited out). */
  private async handleAlone(message: ConsumeMessage): Promise<Error | undefined> {
    try {
      await this.handleCommand(message);
      return undefined;
    } catch (error) {
      if (isConnectionFailure(error) || isTransactionConflict(error)) throw error;
      return error as Error;
    }
  }

  /**
   * Runs a command's handler at most once: its effects and its inbox row with the reply commit together.
   * A failure reply rolls the effects back and is recorded on its own. A duplicate gets the stored reply.
   */
  private async runOnce(command: Envelope, handle: (em: EntityManager) => Promise<StepReply>): Promise<{ reply: Envelope; duplicate: boolean }> {
    const { em } = this.options;
    const record = async (tx: EntityManager, reply: StepReply) => {
      const envelope = replyEnvelope(command, reply);
      await this.inbox.recordReply(tx, command, envelope);
      return { reply: envelope, duplicate: false };
    };
    const duplicateOf = async (tx: EntityManager) => ({ reply: (await this.inbox.replyTo(tx, command.messageId))!, duplicate: true });
    try {
      return await em.fork().transactional(async (tx) => {
        if (!(await this.inbox.claim(tx, command))) return duplicateOf(tx);
        const reply = await handle(tx);
        if (reply.outcome === 'failed') throw new RollbackWith(reply);
        return record(tx, reply);
      });
    } catch (error) {
      if (!(error instanceof RollbackWith)) throw error;
      return em.fork().transactional(async (tx) => {
        if (!(await this.inbox.claim(tx, command))) return duplicateOf(tx);
        return record(tx, error.reply);
      });
    }
  }

  private async handleQuery(message: ConsumeMessage): Promise<void> {
    const { replyTo, correlationId, type } = message.properties;
    const contract = QUERIES.get(String(type));
    const handler = contract && this.handlerFor(contract.type);
    if (!contract || !handler) throw new DeadLetterError('unknown-type', `${this.options.service} answers no query ${type}`);
    if (!replyTo) throw new DeadLetterError('malformed', 'query without reply-to');
    let payload: unknown;
    try {
      payload = JSON.parse(message.content.toString('utf8'));
    } catch {
      throw new MalformedMessageError('body is not valid JSON');
    }
    const parsed = contract.payload.safeParse(payload);
    let response: { ok: boolean; data?: unknown; error?: string };
    if (!parsed.success) {
      response = { ok: false, error: parsed.error.issues.map(describeIssue).join('; ') };
    } else {
      try {
        response = { ok: true, data: await lastValueFrom(this.transformToObservable(await handler(parsed.data, new QueryContext([this.options.em.fork()])))) };
      } catch (error) {
        if (isConnectionFailure(error)) throw error; // waited out by the consumer
        response = { ok: false, error: error instanceof Error ? error.message : String(error) };
      }
    }
    try {
      await this.options.broker.publisher.publishRaw('', replyTo, Buffer.from(JSON.stringify(response)), {
        correlationId,
        messageId: `${correlationId}-response`,
        contentType: 'application/json',
        mandatory: false,
      });
    } catch (error) {
      // The asker gave up (its reply-to address is gone); a query has no effect to lose.
      this.options.logger.warn({ type, err: String(error) }, 'query response not delivered');
    }
  }
}

/** A command read, checked and ready to run. */
interface Prepared {
  command: Envelope;
  contract: CommandContract;
  payload: unknown;
  handler: MessageHandler;
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
