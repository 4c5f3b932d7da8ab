import { Module } from '@nestjs/common';
import { CqrsModule } from '@nestjs/cqrs';
import { Broker, QueryClient, SagaflowCoreModule } from '@sagaflow/shared';
import { ConsoleController } from './console/console.controller.js';
import { DeadLetters } from './console/dead-letters.js';
import { env, logger } from './config.js';
import { migrations } from './migrations/index.js';
import { IDEMPOTENCY_KEY_RETENTION } from './orders/idempotency-keys.js';
import { GetOrderHandler, ListOrdersHandler } from './orders/order-queries.js';
import { OrdersController } from './orders/orders.controller.js';
import { PlaceOrderHandler } from './orders/place-order.js';
import { AskServiceHandler } from './read-models/ask-service.js';
import { ReadController } from './read-models/read.controller.js';
import { Saga, SagaHistory } from './saga-engine/saga.entities.js';
import { SagaRuntime } from './saga-engine/saga-runtime.js';
import { historyRetention } from './saga-engine/saga-repository.js';

@Module({
  imports: [
    SagaflowCoreModule.forRoot({
      name: 'orchestrator',
      env,
      logger,
      schema: 'orchestrator',
      entities: [Saga, SagaHistory],
      migrations,
      retention: [historyRetention(env.SAGA_HISTORY_RETENTION_DAYS), IDEMPOTENCY_KEY_RETENTION],
    }),
    CqrsModule.forRoot(),
  ],
  controllers: [OrdersController, ReadController, ConsoleController],
  providers: [
    SagaRuntime,
    PlaceOrderHandler,
    GetOrderHandler,
    ListOrdersHandler,
    AskServiceHandler,
    { provide: DeadLetters, useFactory: (broker: Broker) => new DeadLetters(broker), inject: [Broker] },
    {
      provide: QueryClient,
      useFactory: (broker: Broker) => new QueryClient(broker.connection, 'orchestrator', env.QUERY_TIMEOUT_MS),
      inject: [Broker],
    },
  ],
})
export class AppModule {}
