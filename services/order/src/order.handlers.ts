import { Controller } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { type CommandContext, failed, OrderCommands, type PayloadOf, type ReplyOf, succeeded } from '@sagaflow/shared';
import { orderStore as store } from './order.store.js';

const { create, confirm, cancel } = OrderCommands;

/** The order's side of the saga: each command is a local transaction whose reply the saga waits for. */
@Controller()
export class OrderHandlers {
  @MessagePattern(create.type)
  async create(@Payload() command: PayloadOf<typeof create>, @Ctx() { tx }: CommandContext): Promise<ReplyOf<typeof create>> {
    if (await store.create(tx, command)) return succeeded({ status: 'PENDING' as const });
    // Created before (a redelivery), or cancelled before it came (a tombstone).
    const status = (await store.statusOf(tx, command.orderId))!;
    if (status === 'CANCELLED') return failed('ORDER_CANCELLED', `order ${command.orderId} was cancelled`);
    return succeeded({ status });
  }

  @MessagePattern(confirm.type)
  async confirm(@Payload() command: PayloadOf<typeof confirm>, @Ctx() { tx }: CommandContext): Promise<ReplyOf<typeof confirm>> {
    if (await store.confirm(tx, command.orderId, command.total, command.currency)) return succeeded({ status: 'CONFIRMED' as const });
    const status = await store.statusOf(tx, command.orderId);
    if (!status) return failed('UNKNOWN_ORDER', `order ${command.orderId} does not exist`);
    if (status === 'CANCELLED') return failed('ORDER_CANCELLED', `order ${command.orderId} was cancelled`);
    return succeeded({ status });
  }

  @MessagePattern(cancel.type)
  async cancel(@Payload() command: PayloadOf<typeof cancel>, @Ctx() { tx }: CommandContext): Promise<ReplyOf<typeof cancel>> {
    if (await store.cancel(tx, command.orderId, command.reason)) return succeeded({ status: 'CANCELLED' as const });
    const status = await store.statusOf(tx, command.orderId);
    if (!status) {
      await store.tombstone(tx, command.orderId, command.reason);
      return succeeded({ status: null });
    }
    // Cancel never undoes a confirmed order: confirming is the saga's last step, past it nothing compensates.
    return succeeded({ status });
  }
}
