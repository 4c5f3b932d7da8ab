import { defineEntity, JsonType, p, type InferEntity, type Platform, type TransformContext } from '@mikro-orm/postgresql';
import type { FaultPlan, SagaStatus, TraceCarrier } from '@sagaflow/shared';
import { packState, type SagaState, unpackState } from './saga-state.js';

/** The state column: stored packed (see packState), read back whole, here and wherever MikroORM reads a saga. */
class SagaStateType extends JsonType {
  override convertToDatabaseValue(value: unknown, platform: Platform, context?: TransformContext): string | null {
    return super.convertToDatabaseValue(value == null ? value : packState(value as SagaState<unknown>), platform, context);
  }

  override convertToJSValue(value: unknown, platform: Platform, context?: TransformContext): unknown {
    const state = super.convertToJSValue(value, platform, context);
    return state == null ? state : unpackState(state as SagaState<unknown>);
  }
}

/**
 * One saga run: the shape the engine decides on, the repository persists and the reads show. `state` is
 * the state machine's; `status` repeats its status for the indexes. `version` gives optimistic locking:
 * two replies for one saga never both apply. `timer_at` is when the engine must next look at the saga;
 * it is not indexed, so that the row is updated in place (HOT) on every transition.
 */
export const Saga = defineEntity({
  name: 'Saga',
  tableName: 'saga',
  properties: {
    id: p.uuid().primary(),
    type: p.string(),
    /** The business id the saga is about (the order id), for lookups. */
    businessKey: p.string(),
    correlationId: p.string(),
    status: p.string().$type<SagaStatus>(),
    state: p.json<SagaState<any>>().type(SagaStateType),
    faultPlan: p.json<FaultPlan>().nullable(),
    timerAt: p.datetime().nullable(),
    /** The order's trace (W3C traceparent / tracestate) when tracing is on: re-sends and step spans continue it. */
    traceContext: p.json<TraceCarrier>().nullable(),
    version: p.integer().version(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
});
export type Saga = InferEntity<typeof Saga>;

/** The saga's history: one row per change of the saga (numbered by the version it made), with what happened. */
export const SagaHistory = defineEntity({
  name: 'SagaHistory',
  tableName: 'saga_history',
  properties: {
    sagaId: p.uuid().primary(),
    seq: p.integer().primary(),
    at: p.datetime(),
    events: p.json<SagaEvent[]>(),
  },
});
export type SagaHistory = InferEntity<typeof SagaHistory>;

/** One thing that happened to a saga: a command sent, a reply taken or ignored, a timer, an operator's action. */
export interface SagaEvent {
  kind: SagaEventKind;
  step?: string;
  messageId?: string;
  messageType?: string;
  outcome?: string;
  detail?: string;
  /** Who did it, for an operator's action: the caller's id (a JWT subject, or an API key's fingerprint). */
  actor?: string;
  /** On a reply: how long its command waited in the queue before the participant first took it (ms). */
  queuedMs?: number;
  /** On a reply: how long the participant worked on its command, retries included (ms). */
  workMs?: number;
}

export type SagaEventKind =
  | 'saga-started'
  | 'command-sent'
  | 'reply-applied'
  | 'reply-ignored'
  // (older sagas only: a reply timeout that sent the command again)
  | 'timed-out'
  | 'deadline-exceeded'
  // The awaited command could not be published for a reason retrying cannot fix.
  | 'command-set-aside'
  | 'saga-ended'
  // What a person did through the console.
  | 'operator-action';
