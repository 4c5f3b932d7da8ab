import { Module } from '@nestjs/common';
import { inboxRetention, SagaflowCoreModule } from '@sagaflow/shared';
import { env, logger } from './config.js';
import { migrations } from './migrations/index.js';
import { Payment, VoidedOrder } from './payment.entities.js';
import { PaymentHandlers } from './payment.handlers.js';

@Module({
  imports: [SagaflowCoreModule.forRoot({ name: 'payment', env, logger, schema: 'payment', entities: [Payment, VoidedOrder], migrations, retention: [inboxRetention('payment', env.INBOX_RETENTION_DAYS)] })],
  controllers: [PaymentHandlers],
})
export class AppModule {}
