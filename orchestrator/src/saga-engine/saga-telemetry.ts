import {
  metricsEnabled,
  recordSpan,
  SAGA_DURATION,
  SAGAS_ENDED,
  SAGAS_STARTED,
  STEP_DURATION,
  STEP_QUEUE_WAIT,
  STEP_WORK,
  TIMER_LAG,
  traceIdOf,
  tracingOn,
  VERSION_CONFLICTS,
} from '@sagaflow/shared';
import type { Saga } from './saga.entities.js';
import type { SagaChange } from './saga-repository.js';

/** A step whose reply a change applied, for its duration (a histogram and a span). */
export interface StepDone {
  step: string;
  action: 'invoke' | 'compensate';
  outcome: 'succeeded' | 'failed';
  /** An invoke: when the step started (its retries included); a compensation: when its last command was sent. */
  startedAtMs: number;
  /** Its command's wait in the queue, and the participant's work on it, when the reply tells them. */
  queuedMs?: number;
  workMs?: number;
}

/** Whether anything watches (metrics or tracing on): else the engine gathers nothing for them. */
export const observing = (): boolean => metricsEnabled() || tracingOn();

/** What every log line about a saga names besides its id: its correlation id and its trace. */
export const sagaLogFields = (saga: Saga) => ({ sagaId: saga.id, correlationId: saga.correlationId, traceId: traceIdOf(saga.traceContext) });

const FAILED_STATUSES = new Set(['FAILED', 'COMPENSATION_FAILED']);

/**
 * Once changes have committed: the sagas they started and ended and the steps they answered, as metrics,
 * and as spans under the trace each saga keeps in its row (a step from its start to its reply, the saga
 * from its start to its end): spans whose start is known only at their end.
 */
export function observeCommitted(changes: SagaChange[]): void {
  if (!observing()) return;
  const tracing = tracingOn();
  for (const { saga, events, stepsDone, ended, at } of changes) {
    if (events[0]?.kind === 'saga-started') SAGAS_STARTED.bind(saga.type).inc();
    for (const done of stepsDone ?? []) {
      STEP_DURATION.bind(saga.type, done.step, done.action, done.outcome).observe(Math.max(0, at.getTime() - done.startedAtMs) / 1_000);
      if (done.queuedMs !== undefined) STEP_QUEUE_WAIT.bind(saga.type, done.step, done.action).observe(done.queuedMs / 1_000);
      if (done.workMs !== undefined) STEP_WORK.bind(saga.type, done.step, done.action).observe(done.workMs / 1_000);
      if (!tracing) continue;
      recordSpan(
        `${done.action === 'invoke' ? 'step' : 'compensate'} ${done.step}`,
        saga.traceContext,
        done.startedAtMs,
        { 'sagaflow.saga.id': saga.id, 'sagaflow.saga.type': saga.type, 'sagaflow.step': done.step, 'sagaflow.step.action': done.action, 'sagaflow.step.outcome': done.outcome },
      );
    }
    if (ended) {
      SAGAS_ENDED.bind(saga.type, saga.status).inc();
      SAGA_DURATION.bind(saga.type, saga.status).observe(Math.max(0, at.getTime() - saga.createdAt.getTime()) / 1_000);
      if (!tracing) continue;
      recordSpan(
        `saga ${saga.type}`,
        saga.traceContext,
        saga.createdAt.getTime(),
        { 'sagaflow.saga.id': saga.id, 'sagaflow.saga.type': saga.type, 'sagaflow.saga.status': saga.status, 'sagaflow.business_key': saga.businessKey },
        FAILED_STATUSES.has(saga.status) ? (saga.state.failureReason ?? saga.status) : undefined,
      );
    }
  }
}

/** A saga save the optimistic lock refused (the saga moved meanwhile). */
export const observeConflict = (saga: Saga): void => VERSION_CONFLICTS.bind(saga.type).inc();

/** How late a due timer is being fired. */
export function observeTimerLag(saga: Saga, now: Date): void {
  if (saga.timerAt) TIMER_LAG.bind().observe(Math.max(0, now.getTime() - new Date(saga.timerAt).getTime()) / 1_000);
}

/**
 * The longest wait in a queue that the replies of the last few seconds reported: how far behind the
 * participants are now. Admission control sheds new orders while it is too long.
 */
const QUEUE_WAIT_WINDOW_MS = 2_000;
let windowStart = 0;
let longestInWindow = 0;
let longestInLastWindow = 0;

export function observeQueueWait(queuedMs: number, now: Date): void {
  const at = now.getTime();
  if (at - windowStart >= QUEUE_WAIT_WINDOW_MS) {
    longestInLastWindow = at - windowStart < 2 * QUEUE_WAIT_WINDOW_MS ? longestInWindow : 0;
    longestInWindow = 0;
    windowStart = at;
  }
  if (queuedMs > longestInWindow) longestInWindow = queuedMs;
}

/** The longest recent queue wait (ms): over the current window and the one before it; 0 when no reply came for a while. */
export function recentQueueWaitMs(now = Date.now()): number {
  const age = now - windowStart;
  if (age >= 2 * QUEUE_WAIT_WINDOW_MS) return 0;
  return age >= QUEUE_WAIT_WINDOW_MS ? longestInWindow : Math.max(longestInWindow, longestInLastWindow);
}
