import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

/** Money moved for an order: at most one charge and one refund each (unique per order and type). */
export const Payment = defineEntity({
  name: 'Payment',
  tableName: 'payment',
  properties: {
    id: p.uuid().primary(),
    orderId: p.uuid(),
    type: p.enum(['charge', 'refund'] as const),
    amount: p.integer(),
    currency: p.string(),
    paymentMethod: p.string(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export type Payment = InferEntity<typeof Payment>;

/** An order refunded before any charge: a charge that arrives later must not take money. */
export const VoidedOrder = defineEntity({
  name: 'VoidedOrder',
  tableName: 'voided_order',
  properties: {
    orderId: p.uuid().primary(),
    voidedAt: p.datetime().onCreate(() => new Date()),
  },
});
export type VoidedOrder = InferEntity<typeof VoidedOrder>;
