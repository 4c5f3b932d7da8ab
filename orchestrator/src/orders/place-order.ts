import { UnprocessableEntityException } from '@nestjs/common';
import { CommandHandler, Command, type ICommandHandler } from '@nestjs/cqrs';
import { FaultPlan, Id, MAX_ORDER_LINES, newMessageId, OrderLine, OrderStatus, Text } from '@sagaflow/shared';
import { z } from 'zod';
import { env } from '../config.js';
import type { ErrorBody } from '../http/error-body.js';
import type { OrderSagaData } from '../order-saga/order-saga.data.js';
import { orderSaga } from '../order-saga/order-saga.definition.js';
import type { StartSaga } from '../saga-engine/saga-engine.js';
import { SagaRuntime } from '../saga-engine/saga-runtime.js';
import type { Saga } from '../saga-engine/saga.entities.js';
import { claimKey, requestHash, storeResponse } from './idempotency-keys.js';
import { toOrderView } from './order.view.js';

/** The body of POST /orders. */
export const PlaceOrderBody = z
  .strictObject({
    customerId: Text(100),
    items: z.array(OrderLine).min(1).max(MAX_ORDER_LINES),
    paymentMethod: Text(100),
    /** Faults to inject into this order's saga, per command type (tests and demos). */
    faults: FaultPlan.optional(),
  })
  .refine((body) => !body.faults || env.FAULT_INJECTION, {
    path: ['faults'],
    message: 'fault plans are refused: start the system with FAULT_INJECTION=true to use them',
  });
export type PlaceOrderBody = z.infer<typeof PlaceOrderBody>;

/** The 202 body. */
export const PlacedOrder = z.strictObject({ orderId: Id, status: OrderStatus });
export type PlacedOrder = z.infer<typeof PlacedOrder>;

export class PlaceOrder extends Command<{ order: PlacedOrder; replayed: boolean }> {
  constructor(
    readonly body: PlaceOrderBody,
    readonly correlationId: string | undefined,
    readonly idempotencyKey: string | undefined,
  ) {
    super();
  }
}

/**
 * Starts the order saga. The order exists (PENDING) as soon as this returns; the saga runs on.
 * With an Idempotency-Key, a repeat of the same request replays the first answer instead.
 */
@CommandHandler(PlaceOrder)
export class PlaceOrderHandler implements ICommandHandler<PlaceOrder> {
  constructor(private readonly runtime: SagaRuntime) {}

  async execute({ body, correlationId, idempotencyKey }: PlaceOrder) {
    const orderId = newMessageId();
    if (!idempotencyKey) {
      const saga = await this.runtime.engine.start(orderSaga.name, startRequest(orderId, body, correlationId));
      return { order: placed(saga), replayed: false };
    }
    return this.placeOnce(orderId, body, correlationId, idempotencyKey);
  }

  /** The key row and the saga commit together: a key never names an order that was not started, nor two. */
  private placeOnce(orderId: string, body: PlaceOrderBody, correlationId: string | undefined, key: string) {
    // Keys are per customer (the stand-in for the caller's identity): two customers may pick the same key.
    const scope = `POST /orders ${body.customerId}`;
    const hash = requestHash(body);
    const { engine } = this.runtime;
    // The saga's first command goes out once this has committed (the answer does not wait for the broker).
    return engine.repository.transaction(async (unit) => {
      const claim = await claimKey(unit.tx, { scope, key, requestHash: hash, orderId, ttlHours: env.IDEMPOTENCY_TTL_HOURS });
      if (!claim.claimed) {
        if (claim.requestHash !== hash) {
          throw new UnprocessableEntityException({
            statusCode: 422,
            error: 'Unprocessable Entity',
            message: `Idempotency-Key ${JSON.stringify(key)} was used with a different request`,
          } satisfies ErrorBody);
        }
        // Rebuilt field by field: jsonb does not keep key order, and a replay should be the same bytes.
        const { orderId: firstOrderId, status } = claim.response as PlacedOrder;
        return { order: { orderId: firstOrderId, status }, replayed: true };
      }
      const order = placed(await engine.start(orderSaga.name, startRequest(orderId, body, correlationId), unit));
      await storeResponse(unit.tx, scope, key, order);
      return { order, replayed: false };
    }, false);
  }
}

const startRequest = (orderId: string, body: PlaceOrderBody, correlationId: string | undefined): StartSaga<OrderSagaData> => ({
  businessKey: orderId,
  correlationId: correlationId ?? orderId,
  data: { orderId, customerId: body.customerId, items: body.items, paymentMethod: body.paymentMethod, total: null, currency: null },
  faultPlan: body.faults,
});

const placed = (saga: Saga): PlacedOrder => {
  const { orderId, status } = toOrderView(saga);
  return { orderId, status };
};
