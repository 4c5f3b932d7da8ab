import { z } from 'zod';
import { Currency, defineCommand, Id, MAX_ORDER_LINES, MinorUnits, OrderLine, Reason, REASON_MAX, Text } from './define.js';

export const OrderStatus = z.enum(['PENDING', 'CONFIRMED', 'CANCELLED']);
export type OrderStatus = z.infer<typeof OrderStatus>;

export const OrderCommands = {
  create: defineCommand(
    'order.create',
    z.strictObject({ orderId: Id, customerId: Text(100), items: z.array(OrderLine).min(1).max(MAX_ORDER_LINES) }),
    z.strictObject({ status: OrderStatus }),
  ),
  confirm: defineCommand('order.confirm', z.strictObject({ orderId: Id, total: MinorUnits, currency: Currency }), z.strictObject({ status: OrderStatus })),
  cancel: defineCommand('order.cancel', z.strictObject({ orderId: Id, reason: Reason(REASON_MAX) }), z.strictObject({ status: OrderStatus.nullable() })),
} as const;
