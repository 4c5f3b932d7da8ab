import { Currency, Id, MinorUnits, OrderLine, OrderStatus, SagaStatus } from '@sagaflow/shared';
import { z } from 'zod';
import type { OrderSagaData } from '../order-saga/order-saga.data.js';
import type { Saga, SagaHistory } from '../saga-engine/saga.entities.js';
import { type SagaState, StepState } from '../saga-engine/saga-state.js';

/** One event of a saga's history: a command sent, a reply applied or ignored, a timer, an operator's action. */
export const HistoryEvent = z.strictObject({
  at: z.string(),
  kind: z.string(),
  step: z.string().nullable(),
  messageId: z.string().nullable(),
  messageType: z.string().nullable(),
  outcome: z.string().nullable(),
  detail: z.string().nullable(),
  /** Who did it, for an operator's action: the JWT's subject or `api-key:<role>:<fingerprint>`. */
  actor: z.string().nullable(),
  /** On a reply: how long its command waited in the queue before the participant first took it (ms). */
  queuedMs: z.number().nullable(),
  /** On a reply: how long the participant worked on its command, its retries included (ms). */
  workMs: z.number().nullable(),
});

/** An order as the API shows it: the order and the saga that carries it. Amounts in minor units. */
export const OrderView = z.strictObject({
  orderId: Id,
  customerId: z.string(),
  items: z.array(OrderLine),
  /** Known once inventory has priced the lines. */
  total: MinorUnits.nullable(),
  currency: Currency.nullable(),
  status: OrderStatus,
  failureReason: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  saga: z.strictObject({
    id: Id,
    status: SagaStatus,
    steps: z.array(StepState),
    /** The awaited command, when it was set aside because it can never be published as it is (a person must act). */
    setAside: z.strictObject({ step: z.string(), commandType: z.string(), messageId: z.string(), reason: z.string(), at: z.string() }).nullable(),
    /** In GET /orders/:id only, not in lists. */
    history: z.array(HistoryEvent).optional(),
  }),
});
export type OrderView = z.infer<typeof OrderView>;

/** A page of orders, newest first; `nextCursor` is passed back as `cursor` for the next page (null at the end). */
export const OrderPage = z.strictObject({ orders: z.array(OrderView), nextCursor: Id.nullable() });
export type OrderPage = z.infer<typeof OrderPage>;

/** The order is CONFIRMED once its saga completed, CANCELLED once it was compensated, PENDING before. */
export function orderStatusOf(status: SagaStatus): OrderStatus {
  if (status === 'COMPLETED') return 'CONFIRMED';
  if (status === 'COMPENSATED') return 'CANCELLED';
  return 'PENDING';
}

export const SAGA_STATUSES_BY_ORDER_STATUS: Record<OrderStatus, SagaStatus[]> = {
  CONFIRMED: ['COMPLETED'],
  CANCELLED: ['COMPENSATED'],
  PENDING: ['RUNNING', 'COMPENSATING', 'FAILED', 'COMPENSATION_FAILED'],
};

export function toOrderView(saga: Saga, history?: SagaHistory[]): OrderView {
  const { data, steps, failureReason, awaiting } = saga.state as SagaState<OrderSagaData>;
  return {
    orderId: data.orderId,
    customerId: data.customerId,
    items: data.items,
    total: data.total,
    currency: data.currency,
    status: orderStatusOf(saga.status),
    failureReason: failureReason ?? null,
    createdAt: saga.createdAt.toISOString(),
    updatedAt: saga.updatedAt.toISOString(),
    saga: {
      id: saga.id,
      status: saga.status,
      steps,
      setAside: awaiting?.setAside ? { step: awaiting.step, commandType: awaiting.commandType, messageId: awaiting.messageId, ...awaiting.setAside } : null,
      // One row per change of the saga; each event in it happened at the row's time.
      history: history?.flatMap((row) =>
        row.events.map((event) => ({
          at: row.at.toISOString(),
          kind: event.kind,
          step: event.step ?? null,
          messageId: event.messageId ?? null,
          messageType: event.messageType ?? null,
          outcome: event.outcome ?? null,
          detail: event.detail ?? null,
          actor: event.actor ?? null,
          queuedMs: event.queuedMs ?? null,
          workMs: event.workMs ?? null,
        })),
      ),
    },
  };
}
