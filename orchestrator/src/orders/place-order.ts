import { CommandHandler, Command, type ICommandHandler } from '@nestjs/cqrs';
import { newMessageId, OrderLine } from '@sagaflow/shared';
import { z } from 'zod';
import { orderSaga } from '../order-saga/order-saga.definition.js';
import { SagaRuntime } from '../saga-engine/saga-runtime.js';
import { toOrderView, type OrderView } from './order.view.js';

/** The body of POST /orders. */
export const PlaceOrderBody = z.strictObject({
  customerId: z.string().trim().min(1).max(100),
  items: z.array(OrderLine).min(1).max(50),
  paymentMethod: z.string().trim().min(1).max(100),
});
export type PlaceOrderBody = z.infer<typeof PlaceOrderBody>;

export class PlaceOrder extends Command<OrderView> {
  constructor(
    readonly body: PlaceOrderBody,
    readonly correlationId: string | undefined,
  ) {
    super();
  }
}

/** Starts the order saga. The order exists (PENDING) as soon as this returns; the saga runs on. */
@CommandHandler(PlaceOrder)
export class PlaceOrderHandler implements ICommandHandler<PlaceOrder> {
  constructor(private readonly runtime: SagaRuntime) {}

  async execute({ body, correlationId }: PlaceOrder): Promise<OrderView> {
    const orderId = newMessageId();
    const saga = await this.runtime.engine.start(orderSaga, {
      businessKey: orderId,
      correlationId: correlationId ?? orderId,
      data: { orderId, customerId: body.customerId, items: body.items, paymentMethod: body.paymentMethod, total: null, currency: null },
    });
    return toOrderView(saga);
  }
}
