import { z } from 'zod';
import { Currency, defineCommand, Id, MinorUnits, OrderLine } from './define.js';

export const OrderStatus = z.enum(['PENDING', 'CONFIRMED', 'CANCELLED']);
export type OrderStatus = z.infer<typeof OrderStatus>;

export const OrderCommands = {
  create: defineCommand(
    'order.create',
    z.object({ orderId: Id, customerId: z.string().min(1).max(100), items: z.array(OrderLine).min(1) }),
    z.object({ status: OrderStatus }),
  ),
  confirm: defineCommand('order.confirm', z.object({ orderId: Id, total: MinorUnits, currency: Currency }), z.object({ status: OrderStatus })),
  cancel: defineCommand('order.cancel', z.object({ orderId: Id, reason: z.string() }), z.object({ status: OrderStatus.nullable() })),
} as const;
