import { z } from 'zod';
import { defineCommand, defineQuery, Id } from './define.js';

export const NotificationKind = z.enum(['confirmation', 'cancellation']);
export const NotificationRecord = z.object({
  id: Id,
  orderId: Id,
  customerId: z.string(),
  kind: NotificationKind,
  reason: z.string().nullable(),
  createdAt: z.string(),
});
export type NotificationRecord = z.infer<typeof NotificationRecord>;

export const NotificationCommands = {
  send: defineCommand(
    'notification.send',
    z.object({ orderId: Id, customerId: z.string(), kind: NotificationKind, reason: z.string().optional() }),
    z.object({ notificationId: Id }),
  ),
} as const;

export const NotificationQueries = {
  forOrder: defineQuery('notification.for-order', z.object({ orderId: Id }), z.array(NotificationRecord)),
} as const;
