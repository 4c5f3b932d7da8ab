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
import { Payment } from './payment.entities.js';
import { paymentStore as store } from './payment.store.js';

const { charge, refund } = PaymentCommands;

/** The test token that makes the (simulated) card issuer decline. */
const DECLINED_TOKEN = 'tok_chargeDeclined';

/** Payment's side of the saga: each command is a local transaction whose reply the saga waits for. */
@Controller()
export class PaymentHandlers {
  @MessagePattern(charge.type)
  async charge(@Payload() command: PayloadOf<typeof charge>, @Ctx() { tx }: CommandContext): Promise<ReplyOf<typeof charge>> {
    await store.takeTurn(tx, command.orderId);
    // An order is charged once, whatever asks again (unique per order and type backs this up).
    const { chargeId, voided } = await store.chargeState(tx, command.orderId);
    if (chargeId) return succeeded({ chargeId });
    if (voided) return failed('ORDER_VOIDED', 'the order was refunded before it was charged');
    if (command.paymentMethod === DECLINED_TOKEN) return failed('PAYMENT_DECLINED', 'card declined');

    const id = uuidv7();
    await store.insertCharge(tx, { id, ...command });
    return succeeded({ chargeId: id });
  }

  @MessagePattern(refund.type)
  async refund(@Payload() command: PayloadOf<typeof refund>, @Ctx() { tx }: CommandContext): Promise<ReplyOf<typeof refund>> {
    await store.takeTurn(tx, command.orderId);
    const payments = await store.paymentsOf(tx, command.orderId);
    const charged = payments.find((payment) => payment.type === 'charge');
    const refunded = payments.find((payment) => payment.type === 'refund');
    if (refunded) return succeeded({ refundId: refunded.id });
    if (!charged) {
      await store.voidOrder(tx, command.orderId);
      return succeeded({ refundId: null });
    }
    const refundId = uuidv7();
    await store.insertRefund(tx, refundId, charged.id);
    return succeeded({ refundId });
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
