import { type BeforeApplicationShutdown, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { Broker, type Consumer, Database, decode, type Envelope, QUEUES, registerOrchestratorMetrics } from '@sagaflow/shared';
import type { ConsumeMessage } from 'amqplib';
import { logger } from '../config.js';
import { orderSaga } from '../order-saga/order-saga.definition.js';
import { SagaEngine } from './saga-engine.js';
import { SagaRepository } from './saga-repository.js';

/** Wires the engine to the broker: the replies queue feeds the engine, and a poll fires its durable timers. */
@Injectable()
export class SagaRuntime implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly engine: SagaEngine;
  private replies?: Consumer;
  private timers?: NodeJS.Timeout;
  private firing?: Promise<unknown>;

  constructor(
    private readonly broker: Broker,
    db: Database,
  ) {
    const repository = new SagaRepository(db, broker.publisher, logger);
    this.engine = new SagaEngine(repository, logger);
    this.engine.register(orderSaga);
    // The saga rows are the outbox: /metrics reads their backlog when scraped.
    registerOrchestratorMetrics(() => repository.outboxBacklog());
  }

  async onApplicationBootstrap(): Promise<void> {
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

  /** Graceful stop: the timer poll and the replies in hand finish (their commands published) while the database is open. */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timers);
    await this.firing;
    await this.replies?.close();
  }
}
