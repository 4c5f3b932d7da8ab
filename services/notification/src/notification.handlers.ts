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

const { send } = NotificationCommands;

/** Notification's side of the saga: tells the customer how the order ended, once per kind. */
@Controller()
export class NotificationHandlers {
  @MessagePattern(send.type)
  async send(@Payload() command: PayloadOf<typeof send>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof send>> {
    const existing = await em.findOne(Notification, { orderId: command.orderId, kind: command.kind });
    if (existing) return succeeded({ notificationId: existing.id });

    const notification = em.create(Notification, {
      id: uuidv7(),
      orderId: command.orderId,
      customerId: command.customerId,
      kind: command.kind,
      reason: command.reason ?? null,
    });
    // A real channel (e-mail, SMS) would go here. It runs before the commit, so a transaction that then
    // fails and is retried sends again: at least once, never silently lost.
    const { orderId, customerId, kind, reason } = command;
    logger.info({ notificationId: notification.id, orderId, customerId, kind, reason }, 'notification sent');
    return succeeded({ notificationId: notification.id });
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
