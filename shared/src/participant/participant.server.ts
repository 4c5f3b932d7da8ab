import type { EntityManager } from '@mikro-orm/postgresql';
import { Server, type CustomTransportStrategy } from '@nestjs/microservices';
import type { ConsumeMessage } from 'amqplib';
import { isObservable, lastValueFrom } from 'rxjs';
import type { Logger } from 'pino';
import { isId, QUERIES } from '../contracts/index.js';
import type { ServiceName } from '../contracts/define.js';
import type { Database } from '../database/database.js';
import { deliveryLogFields } from '../logging/message-fields.js';
import { JSON_CONTENT_TYPE, MalformedMessageError } from '../messaging/codec.js';
import { DeadLetterError, isConnectionFailure } from '../messaging/errors.js';
import type { Consumer } from '../messaging/consumer.js';
import { ANSWERS_QUEUE, EXCHANGES, QUEUES } from '../topology/topology.js';
import type { Broker } from '../runtime/broker.js';
import { CommandRunner, describeIssue } from './command-runner.js';
import { QueryContext } from './command-context.js';
import { FaultInjection } from './fault-injection.js';

export interface ParticipantServerOptions {
  service: ServiceName;
  broker: Broker;
  /** Commands run on the pg driver directly; queries read through MikroORM. */
  db: Database;
  em: EntityManager;
  logger: Logger;
  /** Apply the fault plans commands carry (tests and demos only). */
  faultInjection: boolean;
  /** SLOW_HANDLER_MS: a handler of a batch this slow is finished on its own. */
  slowHandlerMs: number;
}

/**
 * A NestJS transport for saga participants. Handlers are plain `@MessagePattern('<service>.<verb>')`
 * methods. Commands go to the CommandRunner (command in, local transaction, reply out); queries
 * (`@MessagePattern` on a query type) are answered through `sagaflow.answers`, keyed by the request's reply-to.
 */
export class ParticipantServer extends Server implements CustomTransportStrategy {
  private readonly commands: CommandRunner;
  private readonly consumers: Consumer[] = [];
  private readonly handlers = new Map<string, ReturnType<Server['getHandlerByPattern']>>();

  constructor(private readonly options: ParticipantServerOptions) {
    super();
    this.commands = new CommandRunner({
      service: options.service,
      db: options.db,
      logger: options.logger,
      publisher: options.broker.publisher,
      middleware: options.faultInjection ? new FaultInjection(options.logger) : undefined,
      slowHandlerMs: options.slowHandlerMs,
      handlerFor: (type) => {
        const handler = this.handlerFor(type);
        return handler ? async (payload, context) => settled(await handler(payload, context)) : undefined;
      },
    });
  }

  async listen(callback: () => void): Promise<void> {
    const { broker, service } = this.options;
    this.consumers.push(
      broker.consume(QUEUES.commandsOf(service), (message) => this.commands.handleOne(message), { batch: (messages) => this.commands.handleBatch(messages) }),
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

  private async handleQuery(message: ConsumeMessage): Promise<void> {
    const { replyTo, correlationId, type } = message.properties;
    const contract = QUERIES.get(String(type));
    const handler = contract && this.handlerFor(contract.type);
    if (!contract || !handler) throw new DeadLetterError('unknown-type', `${this.options.service} answers no query ${type}`);
    if (message.properties.contentType !== JSON_CONTENT_TYPE) throw new MalformedMessageError(`content type must be ${JSON_CONTENT_TYPE}`);
    // Asked by a QueryClient: UUIDs for the ids, its answers queue to reply to. Anything else could not be answered.
    if (!isId(message.properties.messageId)) throw new MalformedMessageError('a query\'s message id must be a UUID');
    if (!isId(correlationId)) throw new MalformedMessageError('a query\'s correlation id must be a UUID');
    if (typeof replyTo !== 'string' || !ANSWERS_QUEUE_NAME.test(replyTo)) throw new MalformedMessageError(`a query must reply to ${QUEUES.answersOf('<uuid>')}`);
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
        response = { ok: true, data: await settled(await handler(parsed.data, new QueryContext([this.options.em.fork()]))) };
      } catch (error) {
        if (isConnectionFailure(error)) throw error; // waited out by the consumer
        response = { ok: false, error: error instanceof Error ? error.message : String(error) };
      }
    }
    try {
      await this.options.broker.publisher.publishRaw(EXCHANGES.answers, replyTo, Buffer.from(JSON.stringify(response)), {
        correlationId,
        messageId: `${correlationId}-response`,
        contentType: 'application/json',
        mandatory: false,
      });
    } catch (error) {
      // Not expected (an unroutable answer is dropped: mandatory is off); a query has no effect to lose.
      this.options.logger.warn({ ...deliveryLogFields(message), err: String(error) }, 'query response not delivered');
    }
  }
}

const ANSWERS_QUEUE_NAME = new RegExp(`^${ANSWERS_QUEUE.source}$`);

/** A handler's answer: a value, or (for an error routed through Nest's exception filters) an observable. */
const settled = (result: unknown): unknown => (isObservable(result) ? lastValueFrom(result) : result);
