import type { EntityManager } from '@mikro-orm/postgresql';
import { Server, type CustomTransportStrategy } from '@nestjs/microservices';
import type { ConsumeMessage } from 'amqplib';
import { lastValueFrom } from 'rxjs';
import type { Logger } from 'pino';
import { COMMANDS, QUERIES } from '../contracts/index.js';
import type { ServiceName } from '../contracts/define.js';
import { causedBy, type Envelope } from '../contracts/envelope.js';
import { replyType, type StepReply } from '../contracts/replies.js';
import { decode, MalformedMessageError } from '../messaging/codec.js';
import { DeadLetterError } from '../messaging/errors.js';
import type { Consumer } from '../messaging/consumer.js';
import { EXCHANGES, QUEUES } from '../topology/topology.js';
import type { Broker } from '../runtime/broker.js';
import { CommandContext, QueryContext } from './command-context.js';
import { Inbox } from './inbox.js';

export interface ParticipantServerOptions {
  service: ServiceName;
  broker: Broker;
  em: EntityManager;
  logger: Logger;
}

/** Rolls the handler's transaction back while carrying its failure reply out. */
class RollbackWith {
  constructor(readonly reply: StepReply) {}
}

/**
 * A NestJS transport for saga participants. Handlers are plain `@MessagePattern('<service>.<verb>')`
 * methods; for each command this server runs: inbox claim → handler → reply recorded, in one transaction;
 * then publishes the reply (confirmed) and only then acks. Queries (`@MessagePattern` on a query type)
 * are answered on the request's reply-to address.
 */
export class ParticipantServer extends Server implements CustomTransportStrategy {
  private readonly inbox: Inbox;
  private readonly consumers: Consumer[] = [];

  constructor(private readonly options: ParticipantServerOptions) {
    super();
    this.inbox = new Inbox(options.service);
  }

  async listen(callback: () => void): Promise<void> {
    const { broker, service } = this.options;
    this.consumers.push(broker.consume(QUEUES.commandsOf(service), (message) => this.handleCommand(message)));
    const answersQueries = [...QUERIES.values()].some((query) => query.service === service && this.getHandlerByPattern(query.type));
    if (answersQueries) this.consumers.push(broker.consume(QUEUES.queriesOf(service), (message) => this.handleQuery(message)));
    await Promise.all(this.consumers.map((consumer) => consumer.waitForConnect()));
    callback();
  }

  async close(): Promise<void> {
    await Promise.all(this.consumers.map((consumer) => consumer.close()));
  }

  on(): never {
    throw new Error('ParticipantServer has no events');
  }
  unwrap<T>(): T {
    return this.options.broker as T;
  }

  private async handleCommand(message: ConsumeMessage): Promise<void> {
    const command = decode(message);
    const contract = COMMANDS.get(command.type);
    const handler = this.getHandlerByPattern(command.type);
    if (!contract || contract.service !== this.options.service || !handler) {
      throw new DeadLetterError('unknown-type', `${this.options.service} has no handler for ${command.type}`);
    }
    const parsed = contract.payload.safeParse(command.payload);
    if (!parsed.success) throw new DeadLetterError('invalid-payload', parsed.error.issues.map(describeIssue).join('; '));

    const log = this.options.logger.child({ sagaId: command.sagaId, messageId: command.messageId, type: command.type });
    const reply = await this.runOnce(command, async (em) => {
      const result = await lastValueFrom(this.transformToObservable(await handler(parsed.data, new CommandContext([em, command]))));
      return checkReply(contract.result, result as StepReply);
    });
    await this.options.broker.publisher.publish(EXCHANGES.replies, reply.type, reply);
    log.info({ reply: reply.type, replyId: reply.messageId }, 'command handled');
  }

  /**
   * Runs a command's handler at most once: its effects, its inbox row and its reply commit together.
   * A failure reply rolls the effects back and is recorded on its own. A duplicate gets the stored reply.
   */
  private async runOnce(command: Envelope, handle: (em: EntityManager) => Promise<StepReply>): Promise<Envelope> {
    const { em } = this.options;
    const contract = COMMANDS.get(command.type)!;
    const toEnvelope = (reply: StepReply) =>
      causedBy(command, replyType(contract, reply.outcome), reply.outcome === 'succeeded' ? reply.result : reply.failure);
    try {
      return await em.fork().transactional(async (tx) => {
        if (!(await this.inbox.claim(tx, command))) return (await this.inbox.replyTo(tx, command.messageId))!;
        const reply = await handle(tx);
        if (reply.outcome === 'failed') throw new RollbackWith(reply);
        const envelope = toEnvelope(reply);
        await this.inbox.recordReply(tx, command, envelope);
        return envelope;
      });
    } catch (error) {
      if (!(error instanceof RollbackWith)) throw error;
      return em.fork().transactional(async (tx) => {
        if (!(await this.inbox.claim(tx, command))) return (await this.inbox.replyTo(tx, command.messageId))!;
        const envelope = toEnvelope(error.reply);
        await this.inbox.recordReply(tx, command, envelope);
        return envelope;
      });
    }
  }

  private async handleQuery(message: ConsumeMessage): Promise<void> {
    const { replyTo, correlationId, type } = message.properties;
    const contract = QUERIES.get(String(type));
    const handler = contract && this.getHandlerByPattern(contract.type);
    if (!contract || !handler) throw new DeadLetterError('unknown-type', `${this.options.service} answers no query ${type}`);
    if (!replyTo) throw new DeadLetterError('malformed', 'query without reply-to');
    let payload: unknown;
    try {
      payload = JSON.parse(message.content.toString('utf8'));
    } catch {
      throw new MalformedMessageError('body is not valid JSON');
    }
    const parsed = contract.payload.safeParse(payload);
    const response = parsed.success
      ? { ok: true, data: await lastValueFrom(this.transformToObservable(await handler(parsed.data, new QueryContext([this.options.em.fork()])))) }
      : { ok: false, error: parsed.error.issues.map(describeIssue).join('; ') };
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

function checkReply(resultSchema: { safeParse(value: unknown): { success: boolean; error?: unknown } }, reply: StepReply): StepReply {
  if (reply?.outcome === 'failed') return reply;
  if (reply?.outcome !== 'succeeded') throw new Error('participant handler must return succeeded(...) or failed(...)');
  const checked = resultSchema.safeParse(reply.result);
  if (!checked.success) throw new Error(`participant reply breaks its contract: ${String(checked.error)}`);
  return reply;
}

export const describeIssue = (issue: { path: PropertyKey[]; message: string }) =>
  `${issue.path.length ? issue.path.join('.') : '(body)'}: ${issue.message}`;
