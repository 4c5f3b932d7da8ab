import { Controller } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { type CommandContext, failed, OrderCommands, type OrderStatus, type PayloadOf, type ReplyOf, sql, succeeded } from '@sagaflow/shared';

const { create, confirm, cancel } = OrderCommands;

/** The `Order` entity's table (the entity maps it for MikroORM; the commands below write it in SQL). */
const ORDERS = '"order"."orders"';

/**
 * The order's side of the saga: each handler is one local transaction whose reply the saga waits for.
 * Commands are the hot path, so they speak SQL on the transaction's connection: a MikroORM find and flush
 * cost twice the CPU of the whole rest of the command here (see the README's Performance section).
 */
@Controller()
export class OrderHandlers {
  @MessagePattern(create.type)
  async create(@Payload() command: PayloadOf<typeof create>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof create>> {
    const [created] = await sql(
      em,
      `insert into ${ORDERS} (id, customer_id, items, status) values (?, ?, ?::jsonb, 'PENDING') on conflict (id) do nothing returning id`,
      [command.orderId, command.customerId, JSON.stringify(command.items)],
    );
    if (created) return succeeded({ status: 'PENDING' as const });

    // Created before (a redelivery), or cancelled before it came (a tombstone).
    const [existing] = await sql<{ status: OrderStatus }>(em, `select status from ${ORDERS} where id = ?`, [command.orderId]);
    if (existing.status === 'CANCELLED') return failed('ORDER_CANCELLED', `order ${command.orderId} was cancelled`);
    return succeeded({ status: existing.status });
  }

  @MessagePattern(confirm.type)
  async confirm(@Payload() command: PayloadOf<typeof confirm>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof confirm>> {
    // Locked, so a cancel racing this confirm waits and then sees CONFIRMED (never both).
    const [order] = await sql<{ status: OrderStatus }>(em, `select status from ${ORDERS} where id = ? for update`, [command.orderId]);
    if (!order) return failed('UNKNOWN_ORDER', `order ${command.orderId} does not exist`);
    if (order.status === 'CANCELLED') return failed('ORDER_CANCELLED', `order ${command.orderId} was cancelled`);
    if (order.status === 'CONFIRMED') return succeeded({ status: order.status });

    await sql(em, `update ${ORDERS} set status = 'CONFIRMED', total = ?, currency = ?, updated_at = now() where id = ?`, [
      command.total,
      command.currency,
      command.orderId,
    ]);
    return succeeded({ status: 'CONFIRMED' as const });
  }

  @MessagePattern(cancel.type)
  async cancel(@Payload() command: PayloadOf<typeof cancel>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof cancel>> {
    const [order] = await sql<{ status: OrderStatus }>(em, `select status from ${ORDERS} where id = ? for update`, [command.orderId]);
    if (!order) {
      // Cancel before create: leave a tombstone, so the create (if it ever comes) is refused. A create
      // committing meanwhile makes this insert fail, and the retry then cancels that order.
      await sql(em, `insert into ${ORDERS} (id, customer_id, items, status, failure_reason) values (?, '', '[]', 'CANCELLED', ?)`, [
        command.orderId,
        command.reason,
      ]);
      return succeeded({ status: null });
    }
    // Cancel never undoes a confirmed order: confirming is the saga's last step, past it nothing compensates.
    if (order.status !== 'PENDING') return succeeded({ status: order.status });

    await sql(em, `update ${ORDERS} set status = 'CANCELLED', failure_reason = ?, updated_at = now() where id = ?`, [command.reason, command.orderId]);
    return succeeded({ status: 'CANCELLED' as const });
  }
}
