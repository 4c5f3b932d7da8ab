import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';
import type { OrderLine } from '@sagaflow/shared';

/**
 * An order and where the saga left it. A CANCELLED row with no items is a tombstone: the cancel came
 * before the create (after a timeout), so a late create for that order is refused.
 */
export const Order = defineEntity({
  name: 'Order',
  tableName: 'orders',
  properties: {
    id: p.uuid().primary(),
    customerId: p.string(),
    items: p.json<OrderLine[]>(),
    status: p.enum(['PENDING', 'CONFIRMED', 'CANCELLED'] as const),
    /** Known once the order is confirmed (minor units, priced by inventory). */
    total: p.integer().nullable(),
    currency: p.string().nullable(),
    failureReason: p.string().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});
export type Order = InferEntity<typeof Order>;
