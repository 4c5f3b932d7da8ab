import { Module } from '@nestjs/common';
import { inboxRetention, SagaflowCoreModule } from '@sagaflow/shared';
import { env, logger } from './config.js';
import { InventoryHandlers } from './inventory.handlers.js';
import { migrations } from './migrations/index.js';
import { Reservation, StockItem } from './stock.entities.js';

@Module({
  imports: [
    SagaflowCoreModule.forRoot({ name: 'inventory', env, logger, schema: 'inventory', entities: [StockItem, Reservation], migrations, retention: [inboxRetention('inventory', env.INBOX_RETENTION_DAYS)] }),
  ],
  controllers: [InventoryHandlers],
})
export class AppModule {}
