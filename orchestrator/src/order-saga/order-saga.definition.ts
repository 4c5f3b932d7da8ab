import { InventoryCommands, NotificationCommands, OrderCommands, PaymentCommands } from '@sagaflow/shared';
import { env } from '../config.js';
import { defineSaga } from '../saga-engine/saga-definition.js';
import type { OrderSagaData } from './order-saga.data.js';

/**
 * The order saga: create-order → reserve-inventory → charge-payment → (pivot) → confirm-order → notify.
 * If a step before the pivot fails, the steps done so far are undone in reverse order, the customer is
 * told why, and the order ends CANCELLED. After the pivot the order is paid: nothing is undone.
 */
const backoff = { initialDelayMs: 250, multiplier: 4, jitter: 0.1 }; // 250 ms, 1 s, 4 s, ... ±10%

export const orderSaga = defineSaga<OrderSagaData>('order', {
  // A participant's transient errors: 3 attempts, then the command is dead-lettered for a person.
  retry: { ...backoff, attempts: 3, maxDelayMs: 30_000 },
  // Undoing and finishing must happen: many more attempts (COMPENSATION_ATTEMPTS, 20), up to 2 min apart.
  compensationRetry: { ...backoff, attempts: env.COMPENSATION_ATTEMPTS, maxDelayMs: 120_000 },
  retryAfterPivot: { ...backoff, attempts: 50, maxDelayMs: 120_000 },
  // A participant works on one attempt for at most STEP_TIMEOUT_MS (30 s); its wait in the queue is not counted.
  workTimeoutMs: env.STEP_TIMEOUT_MS,
  // Not past the pivot within SAGA_DEADLINE_MS (5 min): compensate. Nothing else cancels an order.
  deadlineMs: env.SAGA_DEADLINE_MS,
})
  .step('create-order')
  .invoke(OrderCommands.create, (order) => ({ orderId: order.orderId, customerId: order.customerId, items: order.items }))
  .compensateWith(OrderCommands.cancel, (order, saga) => ({ orderId: order.orderId, reason: saga.failureReason ?? 'cancelled' }))

  .step('reserve-inventory')
  .invoke(InventoryCommands.reserve, (order) => ({ orderId: order.orderId, items: order.items }))
  .onSuccess((order, reservation) => ({ ...order, total: reservation.total, currency: reservation.currency }))
  .compensateWith(InventoryCommands.release, (order) => ({ orderId: order.orderId }))

  .step('charge-payment')
  .invoke(PaymentCommands.charge, (order) => ({
    orderId: order.orderId,
    customerId: order.customerId,
    amount: order.total!,
    currency: order.currency!,
    paymentMethod: order.paymentMethod,
  }))
  .compensateWith(PaymentCommands.refund, (order) => ({ orderId: order.orderId }))
  .retry({ attempts: 5 }) // the payment gateway is the flakiest part

  .pivot()

  .step('confirm-order')
  .invoke(OrderCommands.confirm, (order) => ({ orderId: order.orderId, total: order.total!, currency: order.currency! }))

  .step('notify')
  .invoke(NotificationCommands.send, (order) => ({ orderId: order.orderId, customerId: order.customerId, kind: 'confirmation' as const }))

  .afterCompensation('notify-cancellation')
  .invoke(NotificationCommands.send, (order, saga) => ({
    orderId: order.orderId,
    customerId: order.customerId,
    kind: 'cancellation' as const,
    reason: saga.failureReason ?? undefined,
  }))

  .build();
