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
  sql,
  succeeded,
} from '@sagaflow/shared';
import { v7 as uuidv7 } from 'uuid';
import { logger } from './config.js';
import { Notification } from './notification.entities.js';

const { send } = NotificationCommands;

/** The `Notification` entity's table: the command writes it in SQL, queries read the entity. */
const NOTIFICATIONS = '"notification"."notification"';

/**
 * Notification's side of the saga: tells the customer how the order ended, once per kind. The command is
 * the hot path, so it speaks SQL on the transaction's connection (a MikroORM find and flush cost more
 * CPU than the rest of a command; see the README's Performance section).
 */
@Controller()
export class NotificationHandlers {
  @MessagePattern(send.type)
  async send(@Payload() command: PayloadOf<typeof send>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof send>> {
    const { orderId, customerId, kind, reason } = command;
    const [existing] = await sql<{ id: string }>(em, `select id from ${NOTIFICATIONS} where order_id = ? and kind = ?`, [orderId, kind]);
    if (existing) return succeeded({ notificationId: existing.id });

    const notificationId = uuidv7();
    await sql(em, `insert into ${NOTIFICATIONS} (id, order_id, customer_id, kind, reason) values (?, ?, ?, ?, ?)`, [
      notificationId,
      orderId,
      customerId,
      kind,
      reason ?? null,
    ]);
    // A real channel (e-mail, SMS) would go here. It runs before the commit, so a transaction that then
    // fails and is retried sends again: at least once, never silently lost.
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
