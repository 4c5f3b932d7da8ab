import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { CqrsModule } from '@nestjs/cqrs';
import { Broker, Database, QueryClient, SagaflowCoreModule } from '@sagaflow/shared';
import { ApiDocsController } from './api-docs/api-docs.controller.js';
import { ConsoleController } from './console/console.controller.js';
import { DeadLetters } from './console/dead-letters.js';
import { AuthGuard } from './auth/auth.guard.js';
import { Authenticator } from './auth/authenticator.js';
import { Sessions } from './auth/session.js';
import { env, logger } from './config.js';
import { migrations } from './migrations/index.js';
import { Admission } from './orders/admission.js';
import { IDEMPOTENCY_KEY_RETENTION } from './orders/idempotency-keys.js';
import { GetOrderHandler, ListOrdersHandler } from './orders/order-queries.js';
import { OrdersController } from './orders/orders.controller.js';
import { PlaceOrderHandler } from './orders/place-order.js';
import { AskServiceHandler } from './read-models/ask-service.js';
import { ReadController } from './read-models/read.controller.js';
import { Saga, SagaHistory } from './saga-engine/saga.entities.js';
import { SagaRuntime } from './saga-engine/saga-runtime.js';
import { historyRetention } from './saga-engine/saga-repository.js';
import { LiveUpdates } from './ui/live-updates.js';
import { UiController } from './ui/ui.controller.js';

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
  controllers: [OrdersController, ReadController, ConsoleController, ApiDocsController, UiController],
  providers: [
    {
      provide: Authenticator,
      useFactory: () =>
        new Authenticator({
          apiKeys: env.API_KEYS,
          jwt: env.JWT_JWKS_URL
            ? { jwksUrl: env.JWT_JWKS_URL, issuer: env.JWT_ISSUER!, audience: env.JWT_AUDIENCE!, rolesClaim: env.JWT_ROLES_CLAIM, customerClaim: env.JWT_CUSTOMER_CLAIM }
            : undefined,
        }),
    },
    {
      provide: Sessions,
      useFactory: (authenticator: Authenticator) => new Sessions(authenticator, env.UI_SESSION_SECRET, env.UI_SESSION_HOURS * 3_600_000),
      inject: [Authenticator],
    },
    { provide: APP_GUARD, useClass: AuthGuard },
    SagaRuntime,
    Admission,
    PlaceOrderHandler,
    GetOrderHandler,
    ListOrdersHandler,
    AskServiceHandler,
    { provide: DeadLetters, useFactory: (broker: Broker) => new DeadLetters(broker), inject: [Broker] },
    { provide: LiveUpdates, useFactory: (db: Database, deadLetters: DeadLetters) => new LiveUpdates(db, deadLetters), inject: [Database, DeadLetters] },
    {
      provide: QueryClient,
      useFactory: (broker: Broker) => new QueryClient(broker.publishConnection, 'orchestrator', env.QUERY_TIMEOUT_MS, broker.declarePublishing),
      inject: [Broker],
    },
  ],
})
export class AppModule {}
