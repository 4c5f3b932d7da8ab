import { LockMode } from '@mikro-orm/postgresql';
import { Controller } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { type CommandContext, failed, OrderCommands, type PayloadOf, type ReplyOf, succeeded } from '@sagaflow/shared';
import { Order } from './order.entities.js';

const { create, confirm, cancel } = OrderCommands;

/** The order's side of the saga: each handler is one local transaction whose reply the saga waits for. */
@Controller()
export class OrderHandlers {
  @MessagePattern(create.type)
  async create(@Payload() command: PayloadOf<typeof create>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof create>> {
    const existing = await em.findOne(Order, command.orderId);
    if (existing?.status === 'CANCELLED') return failed('ORDER_CANCELLED', `order ${command.orderId} was cancelled`);
    if (existing) return succeeded({ status: existing.status });

    em.create(Order, {
      id: command.orderId,
      customerId: command.customerId,
      items: command.items,
      status: 'PENDING',
      total: null,
      currency: null,
      failureReason: null,
    });
    return succeeded({ status: 'PENDING' as const });
  }

  @MessagePattern(confirm.type)
  async confirm(@Payload() command: PayloadOf<typeof confirm>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof confirm>> {
    // Locked, so a cancel racing this confirm waits and then sees CONFIRMED (never both).
    const order = await em.findOne(Order, command.orderId, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!order) return failed('UNKNOWN_ORDER', `order ${command.orderId} does not exist`);
    if (order.status === 'CANCELLED') return failed('ORDER_CANCELLED', `order ${command.orderId} was cancelled`);
    if (order.status === 'CONFIRMED') return succeeded({ status: order.status });

    order.status = 'CONFIRMED';
    order.total = command.total;
    order.currency = command.currency;
    return succeeded({ status: order.status });
  }

  @MessagePattern(cancel.type)
  async cancel(@Payload() command: PayloadOf<typeof cancel>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof cancel>> {
    const order = await em.findOne(Order, command.orderId, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!order) {
      // Cancel before create: leave a tombstone, so the create (if it ever comes) is refused.
      em.create(Order, {
        id: command.orderId,
        customerId: '',
        items: [],
        status: 'CANCELLED',
        total: null,
        currency: null,
        failureReason: command.reason,
      });
      return succeeded({ status: null });
    }
    // Cancel never undoes a confirmed order: confirming is the saga's last step, past it nothing compensates.
    if (order.status !== 'PENDING') return succeeded({ status: order.status });

    order.status = 'CANCELLED';
    order.failureReason = command.reason;
    return succeeded({ status: order.status });
  }
}
