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
  succeeded,
} from '@sagaflow/shared';
import { v7 as uuidv7 } from 'uuid';
import { Payment, VoidedOrder } from './payment.entities.js';

const { charge, refund } = PaymentCommands;

/** The test token that makes the (simulated) card issuer decline. */
const DECLINED_TOKEN = 'tok_chargeDeclined';

/** Payment's side of the saga: each handler is one local transaction whose reply the saga waits for. */
@Controller()
export class PaymentHandlers {
  @MessagePattern(charge.type)
  async charge(@Payload() command: PayloadOf<typeof charge>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof charge>> {
    // An order is charged once, whatever asks again (unique per order and type backs this up).
    const existing = await em.findOne(Payment, { orderId: command.orderId, type: 'charge' });
    if (existing) return succeeded({ chargeId: existing.id });
    if (await em.findOne(VoidedOrder, command.orderId)) return failed('ORDER_VOIDED', 'the order was refunded before it was charged');
    if (command.paymentMethod === DECLINED_TOKEN) return failed('PAYMENT_DECLINED', 'card declined');

    const { id } = em.create(Payment, {
      id: uuidv7(),
      orderId: command.orderId,
      type: 'charge',
      amount: command.amount,
      currency: command.currency,
      paymentMethod: command.paymentMethod,
    });
    return succeeded({ chargeId: id });
  }

  @MessagePattern(refund.type)
  async refund(@Payload() command: PayloadOf<typeof refund>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof refund>> {
    const payments = await em.find(Payment, { orderId: command.orderId });
    const charged = payments.find((payment) => payment.type === 'charge');
    const refunded = payments.find((payment) => payment.type === 'refund');
    if (refunded) return succeeded({ refundId: refunded.id });
    if (!charged) {
      // Nothing charged (yet): nothing to give back, and a charge that comes late must not take money.
      if (!(await em.findOne(VoidedOrder, command.orderId))) em.create(VoidedOrder, { orderId: command.orderId });
      return succeeded({ refundId: null });
    }

    const { id } = em.create(Payment, {
      id: uuidv7(),
      orderId: command.orderId,
      type: 'refund',
      amount: charged.amount,
      currency: charged.currency,
      paymentMethod: charged.paymentMethod,
    });
    return succeeded({ refundId: id });
  }

  @MessagePattern(PaymentQueries.forOrder.type)
  async forOrder(@Payload() query: PayloadOf<typeof PaymentQueries.forOrder>, @Ctx() { em }: QueryContext): Promise<PaymentRecord[]> {
    // v7 ids grow with time, so they break created_at ties in the order the rows were written.
    return (await em.find(Payment, { orderId: query.orderId }, { orderBy: { createdAt: 'asc', id: 'asc' } })).map(view);
  }
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
