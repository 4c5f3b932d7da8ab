import { Module } from '@nestjs/common';
import { inboxRetention, SagaflowCoreModule } from '@sagaflow/shared';
import { env, logger } from './config.js';
import { migrations } from './migrations/index.js';
import { Order } from './order.entities.js';
import { OrderHandlers } from './order.handlers.js';

@Module({
  imports: [SagaflowCoreModule.forRoot({ name: 'order', env, logger, schema: 'order', entities: [Order], migrations, retention: [inboxRetention('order', env.INBOX_RETENTION_DAYS)] })],
  controllers: [OrderHandlers],
})
export class AppModule {}
