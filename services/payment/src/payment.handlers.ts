import { Controller } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import {
  type CommandContext,
  failed,
  PaymentCommands,
  PaymentQueries,
  type PaymentRecord,
  type PayloadOf,
  type QueryContext,
  type ReplyOf,
  sql,
  succeeded,
} from '@sagaflow/shared';
import { v7 as uuidv7 } from 'uuid';
import { Payment } from './payment.entities.js';

const { charge, refund } = PaymentCommands;

/** The test token that makes the (simulated) card issuer decline. */
const DECLINED_TOKEN = 'tok_chargeDeclined';

/** The tables of the `Payment` and `VoidedOrder` entities: commands write them in SQL, queries read the entities. */
const PAYMENTS = '"payment"."payment"';
const VOIDED = '"payment"."voided_order"';

/**
 * Payment's side of the saga: each handler is one local transaction whose reply the saga waits for.
 * Commands are the hot path, so they speak SQL on the transaction's connection (a MikroORM find and
 * flush cost more CPU than the rest of a command; see the README's Performance section).
 */
@Controller()
export class PaymentHandlers {
  @MessagePattern(charge.type)
  async charge(@Payload() command: PayloadOf<typeof charge>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof charge>> {
    await takeTurn(em, command.orderId);
    // An order is charged once, whatever asks again (unique per order and type backs this up).
    const [seen] = await sql<{ charge_id: string | null; voided: boolean }>(
      em,
      `select (select id from ${PAYMENTS} where order_id = ? and type = 'charge') as charge_id,
              exists (select 1 from ${VOIDED} where order_id = ?) as voided`,
      [command.orderId, command.orderId],
    );
    if (seen.charge_id) return succeeded({ chargeId: seen.charge_id });
    if (seen.voided) return failed('ORDER_VOIDED', 'the order was refunded before it was charged');
    if (command.paymentMethod === DECLINED_TOKEN) return failed('PAYMENT_DECLINED', 'card declined');

    const chargeId = uuidv7();
    await sql(em, `insert into ${PAYMENTS} (id, order_id, type, amount, currency, payment_method) values (?, ?, 'charge', ?, ?, ?)`, [
      chargeId,
      command.orderId,
      command.amount,
      command.currency,
      command.paymentMethod,
    ]);
    return succeeded({ chargeId });
  }

  @MessagePattern(refund.type)
  async refund(@Payload() command: PayloadOf<typeof refund>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof refund>> {
    await takeTurn(em, command.orderId);
    const payments = await sql<{ id: string; type: 'charge' | 'refund' }>(em, `select id, type from ${PAYMENTS} where order_id = ?`, [command.orderId]);
    const charged = payments.find((payment) => payment.type === 'charge');
    const refunded = payments.find((payment) => payment.type === 'refund');
    if (refunded) return succeeded({ refundId: refunded.id });
    if (!charged) {
      // Nothing charged (yet): nothing to give back, and a charge that comes late must not take money.
      await sql(em, `insert into ${VOIDED} (order_id) values (?) on conflict do nothing`, [command.orderId]);
      return succeeded({ refundId: null });
    }

    // The refund gives back exactly what the charge took.
    const refundId = uuidv7();
    await sql(
      em,
      `insert into ${PAYMENTS} (id, order_id, type, amount, currency, payment_method)
       select ?, order_id, 'refund', amount, currency, payment_method from ${PAYMENTS} where id = ?`,
      [refundId, charged.id],
    );
    return succeeded({ refundId });
  }

  @MessagePattern(PaymentQueries.forOrder.type)
  async forOrder(@Payload() query: PayloadOf<typeof PaymentQueries.forOrder>, @Ctx() { em }: QueryContext): Promise<PaymentRecord[]> {
    // v7 ids grow with time, so they break created_at ties in the order the rows were written.
    return (await em.find(Payment, { orderId: query.orderId }, { orderBy: { createdAt: 'asc', id: 'asc' } })).map(view);
  }
}

/**
 * The charge and the refund of one order take turns, even on two instances of this service: a refund that
 * finds no charge voids the order, and the charge must then see that (and the refund the charge).
 * Neither reads the other's uncommitted row, so a lock until commit orders them.
 */
async function takeTurn(em: CommandContext['em'], orderId: string): Promise<void> {
  await sql(em, `select pg_advisory_xact_lock(hashtextextended(?, 0))`, [`payment:${orderId}`]);
}

const view = (payment: Payment): PaymentRecord => ({
  id: payment.id,
  orderId: payment.orderId,
  type: payment.type,
  amount: payment.amount,
  currency: payment.currency,
  paymentMethod: payment.paymentMethod,
  createdAt: payment.createdAt.toISOString(),
});
