import { z } from 'zod';
import { defineCommand, defineQuery, Id, Reason, REASON_MAX, Text } from './define.js';

export const NotificationKind = z.enum(['confirmation', 'cancellation']);
export const NotificationRecord = z.strictObject({
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
    z.strictObject({ orderId: Id, customerId: Text(100), kind: NotificationKind, reason: Reason(REASON_MAX).optional() }),
    z.strictObject({ notificationId: Id }),
  ),
} as const;

export const NotificationQueries = {
  forOrder: defineQuery('notification.for-order', z.strictObject({ orderId: Id }), z.array(NotificationRecord)),
} as const;
