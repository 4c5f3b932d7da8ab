import { Module } from '@nestjs/common';
import { inboxRetention, SagaflowCoreModule } from '@sagaflow/shared';
import { env, logger } from './config.js';
import { migrations } from './migrations/index.js';
import { Notification } from './notification.entities.js';
import { NotificationHandlers } from './notification.handlers.js';

@Module({
  imports: [
    SagaflowCoreModule.forRoot({ name: 'notification', env, logger, schema: 'notification', entities: [Notification], migrations, retention: [inboxRetention('notification', env.INBOX_RETENTION_DAYS)] }),
  ],
  controllers: [NotificationHandlers],
})
export class AppModule {}
