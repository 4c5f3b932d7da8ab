import { MikroORM } from '@mikro-orm/postgresql';
import { type BeforeApplicationShutdown, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { Broker, type Consumer, decode, Outbox, OutboxRelay, QUEUES } from '@sagaflow/shared';
import { logger } from '../config.js';
import { orderSaga } from '../order-saga/order-saga.definition.js';
import { SagaEngine } from './saga-engine.js';

/** Wires the engine to the broker: the outbox relay sends commands, the replies queue feeds the engine. */
@Injectable()
export class SagaRuntime implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly engine: SagaEngine;
  private readonly relay: OutboxRelay;
  private replies?: Consumer;

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
    this.replies = this.broker.consume(QUEUES.replies, (message) => this.engine.handleReply(decode(message)));
    await this.replies.waitForConnect();
  }

  /** Graceful stop: finish the replies in hand, then flush the outbox, while the database is still open. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.replies?.close();
    await this.relay.stop();
  }
}
