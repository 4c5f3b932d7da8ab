import { Controller } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import {
  type CommandContext,
  NotificationCommands,
  NotificationQueries,
  type NotificationRecord,
  type PayloadOf,
  type QueryContext,
  type ReplyOf,
  succeeded,
} from '@sagaflow/shared';
import { v7 as uuidv7 } from 'uuid';
import { logger } from './config.js';
import { Notification } from './notification.entities.js';
import { notificationStore as store } from './notification.store.js';

const { send } = NotificationCommands;

/** Notification's side of the saga: tells the customer how the order ended, once per kind. */
@Controller()
export class NotificationHandlers {
  @MessagePattern(send.type)
  async send(@Payload() command: PayloadOf<typeof send>, @Ctx() { tx }: CommandContext): Promise<ReplyOf<typeof send>> {
    const notificationId = uuidv7();
    if (!(await store.record(tx, { id: notificationId, ...command }))) return succeeded({ notificationId: await store.sent(tx, command.orderId, command.kind) });
    // A real channel (e-mail, SMS) would go here. It runs before the commit, so a transaction that then
    // fails and is retried sends again: at least once, never silently lost.
    const { orderId, customerId, kind, reason } = command;
    logger.info({ notificationId, orderId, customerId, kind, reason }, 'notification sent');
    return succeeded({ notificationId });
  }

  @MessagePattern(NotificationQueries.forOrder.type)
  async forOrder(
    @Payload() query: PayloadOf<typeof NotificationQueries.forOrder>,
    @Ctx() { em }: QueryContext,
  ): Promise<NotificationRecord[]> {
    return (await em.find(Notification, { orderId: query.orderId }, { orderBy: { createdAt: 'asc', id: 'asc' } })).map(view);
  }
}

const view = (notification: Notification): NotificationRecord => ({
  id: notification.id,
  orderId: notification.orderId,
  customerId: notification.customerId,
  kind: notification.kind,
  reason: notification.reason ?? null,
  createdAt: notification.createdAt.toISOString(),
});
