import { z } from 'zod';
import { Currency, defineCommand, defineQuery, Id, MinorUnits } from './define.js';

export const PaymentRecord = z.object({
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
    z.object({
      orderId: Id,
      customerId: z.string(),
      amount: MinorUnits,
      currency: Currency,
      paymentMethod: z.string().min(1),
    }),
    z.object({ chargeId: Id }),
  ),
  /** Refunds the order's charge; a no-op when there is none. */
  refund: defineCommand('payment.refund', z.object({ orderId: Id }), z.object({ refundId: Id.nullable() })),
} as const;

export const PaymentQueries = {
  forOrder: defineQuery('payment.for-order', z.object({ orderId: Id }), z.array(PaymentRecord)),
} as const;
