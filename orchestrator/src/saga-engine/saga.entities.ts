import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';
import type { FaultPlan, SagaStatus } from '@sagaflow/shared';
import type { Awaiting, StepState } from './saga-state.js';

/** One saga run. `version` gives optimistic locking: two replies for one saga never both apply. */
export const SagaInstance = defineEntity({
  name: 'SagaInstance',
  tableName: 'saga',
  properties: {
    id: p.uuid().primary(),
    type: p.string(),
    /** The business id the saga is about (the order id), for lookups. */
    businessKey: p.string(),
    correlationId: p.string(),
    status: p.string().$type<SagaStatus>(),
    data: p.json<Record<string, unknown>>(),
    steps: p.json<StepState[]>(),
    awaiting: p.json<Awaiting>().nullable(),
    failureReason: p.string().nullable(),
    faultPlan: p.json<FaultPlan>().nullable(),
    deadlineAt: p.datetime().nullable(),
    /** When the timer poll must next look at this saga (the awaited reply's timeout, or the deadline). */
    timerAt: p.datetime().nullable(),
    version: p.integer().version(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
});
export type SagaInstance = InferEntity<typeof SagaInstance>;

/** The saga's history: every command sent and every reply taken or ignored, in order. */
export const SagaEvent = defineEntity({
  name: 'SagaEvent',
  tableName: 'saga_event',
  properties: {
    id: p.bigint('number').primary().autoincrement(),
    sagaId: p.uuid().index('saga_event_saga_idx'),
    at: p.datetime(),
    step: p.string().nullable(),
    kind: p.string().$type<SagaEventKind>(),
    messageId: p.uuid().nullable(),
    messageType: p.string().nullable(),
    outcome: p.string().nullable(),
    detail: p.string().nullable(),
  },
});
export type SagaEvent = InferEntity<typeof SagaEvent>;

export type SagaEventKind =
  | 'saga-started'
  | 'command-sent'
  | 'reply-applied'
  | 'reply-ignored'
  | 'timed-out'
  | 'deadline-exceeded'
  | 'saga-ended'
  // What a person did through the console.
  | 'operator-action';
