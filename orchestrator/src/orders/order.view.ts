import type { OrderLine, OrderStatus, SagaStatus } from '@sagaflow/shared';
import type { OrderSagaData } from '../order-saga/order-saga.data.js';
import type { Saga, SagaHistory } from '../saga-engine/saga.entities.js';
import type { SagaState, StepState } from '../saga-engine/saga-state.js';

/** An order as the API shows it: the order and the saga that carries it. Amounts in minor units. */
export interface OrderView {
  orderId: string;
  customerId: string;
  items: OrderLine[];
  total: number | null;
  currency: string | null;
  status: OrderStatus;
  failureReason: string | null;
  createdAt: string;
  updatedAt: string;
  saga: {
    id: string;
    status: SagaStatus;
    steps: StepState[];
    /** The awaited command, when it was set aside because it can never be published as it is (a person must act). */
    setAside: { step: string; commandType: string; messageId: string; reason: string; at: string } | null;
    history?: { at: string; kind: string; step: string | null; messageId: string | null; messageType: string | null; outcome: string | null; detail: string | null; actor: string | null }[];
  };
}

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
        })),
      ),
    },
  };
}
