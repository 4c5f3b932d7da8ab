import { z } from 'zod';
import { Currency, defineCommand, defineQuery, Id, MinorUnits, Text } from './define.js';

export const PaymentRecord = z.strictObject({
  id: Id,
  orderId: Id,
  type: z.enum(['charge', 'refund']),
  amount: MinorUnits,
  currency: Currency,
  paymentMethod: z.string(),
  createdAt: z.string(),
});
export type PaymentRecord = z.infer<typeof PaymentRecord>;

export const PaymentCommands = {
  charge: defineCommand(
    'payment.charge',
    z.strictObject({
      orderId: Id,
      customerId: Text(100),
      amount: MinorUnits,
      currency: Currency,
      paymentMethod: Text(100),
    }),
    z.strictObject({ chargeId: Id }),
  ),
  /** Refunds the order's charge; a no-op when there is none. */
  refund: defineCommand('payment.refund', z.strictObject({ orderId: Id }), z.strictObject({ refundId: Id.nullable() })),
} as const;

export const PaymentQueries = {
  forOrder: defineQuery('payment.for-order', z.strictObject({ orderId: Id }), z.array(PaymentRecord)),
} as const;
