import { Module } from '@nestjs/common';
import { SagaflowCoreModule } from '@sagaflow/shared';
import { env, logger } from './config.js';
import { migrations } from './migrations/index.js';
import { Payment, VoidedOrder } from './payment.entities.js';
import { PaymentHandlers } from './payment.handlers.js';

@Module({
  imports: [SagaflowCoreModule.forRoot({ name: 'payment', env, logger, schema: 'payment', entities: [Payment, VoidedOrder], migrations })],
  controllers: [PaymentHandlers],
})
export class AppModule {}
