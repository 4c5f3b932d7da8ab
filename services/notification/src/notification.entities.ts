import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

/** A message sent to the customer about an order: at most one of each kind per order. */
export const Notification = defineEntity({
  name: 'Notification',
  tableName: 'notification',
  properties: {
    id: p.uuid().primary(),
    orderId: p.uuid(),
    customerId: p.string(),
    kind: p.enum(['confirmation', 'cancellation'] as const),
    reason: p.string().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type Notification = InferEntity<typeof Notification>;
