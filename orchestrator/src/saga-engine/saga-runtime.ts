import { MikroORM } from '@mikro-orm/postgresql';
import { type BeforeApplicationShutdown, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { Broker, type Consumer, decode, type Envelope, Outbox, OutboxRelay, QUEUES } from '@sagaflow/shared';
import type { ConsumeMessage } from 'amqplib';
import { logger } from '../config.js';
import { orderSaga } from '../order-saga/order-saga.definition.js';
import { SagaEngine } from './saga-engine.js';

/** Wires the engine to the broker: the outbox relay sends commands, the replies queue feeds the engine. */
@Injectable()
export class SagaRuntime implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly engine: SagaEngine;
  private readonly relay: OutboxRelay;
  private replies?: Consumer;
  private timers?: NodeJS.Timeout;
  private firing?: Promise<unknown>;

  constructor(
    private readonly broker: Broker,
    orm: MikroORM,
  ) {
    const outbox = new Outbox('orchestrator');
    this.relay = new OutboxRelay({ outbox, em: orm.em, publisher: broker.publisher, logger });
    this.engine = new SagaEngine(orm, outbox, this.relay, logger);
    this.engine.register(orderSaga);
  }

  async onApplicationBootstrap(): Promise<void> {
    this.relay.start();
    // Timers live in PostgreSQL (saga.timer_at); this poll fires the due ones. No in-memory timer is trusted.
    this.timers = setInterval(() => {
      this.firing ??= this.engine
        .fireDueTimers()
        .catch((error: Error) => logger.warn({ err: error.message }, 'timer poll failed; will retry'))
        .finally(() => (this.firing = undefined));
    }, 250);
    this.replies = this.broker.consume(QUEUES.replies, (message) => this.engine.handleReply(decode(message)), {
      batch: (messages) => this.handleReplies(messages),
    });
    await this.replies.waitForConnect();
  }

  /** The replies in hand as one batch; one that cannot be read fails alone (the consumer dead-letters it). */
  private async handleReplies(messages: ConsumeMessage[]): Promise<(Error | undefined)[]> {
    const decoded = messages.map((message) => {
      try {
        return decode(message);
      } catch (error) {
        return error as Error;
      }
    });
    const readable = decoded.filter((item): item is Envelope => !(item instanceof Error));
    const outcomes = await this.engine.handleReplies(readable);
    let next = 0;
    return decoded.map((item) => (item instanceof Error ? item : outcomes[next++]));
  }

  /** Graceful stop: finish the replies in hand, then flush the outbox, while the database is still open. */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timers);
    await this.firing;
    await this.replies?.close();
    await this.relay.stop();
  }
}
