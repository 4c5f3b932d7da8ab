import type { CommandContract, FailureReply, RetryPolicy } from '@sagaflow/shared';
import type { SagaDefinition, SagaFacts, StepDefinition } from './saga-definition.js';

/**
 * RUNNING → COMPLETED, or RUNNING → COMPENSATING → COMPENSATED when a step before the pivot fails.
 * FAILED: a step after the pivot refused (it is never compensated; needs attention).
 * COMPENSATION_FAILED: an undo refused; the saga is half-undone and needs attention.
 */
export type SagaStatus = 'RUNNING' | 'COMPENSATING' | 'COMPLETED' | 'COMPENSATED' | 'FAILED' | 'COMPENSATION_FAILED';
export const FINAL_STATUSES: readonly SagaStatus[] = ['COMPLETED', 'COMPENSATED', 'FAILED', 'COMPENSATION_FAILED'];

export type StepStatus = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'COMPENSATING' | 'COMPENSATED' | 'COMPENSATION_FAILED' | 'SKIPPED';

export interface StepState {
  name: string;
  status: StepStatus;
  /** How many attempts the participant needed (retries included), as its reply said. */
  attempts: number;
  /** When and why the failed attempts failed (delays between them follow the retry policy). */
  failures: { at: string; error: string }[];
  startedAt: string | null;
  finishedAt: string | null;
  compensatedAt: string | null;
  error: string | null;
}

/** The one command whose reply the saga waits for; any other reply is stale. */
export interface Awaiting {
  step: string;
  action: 'invoke' | 'compensate';
  commandType: string;
  messageId: string;
}

export interface SagaState<D> {
  status: SagaStatus;
  data: D;
  steps: StepState[];
  awaiting: Awaiting | null;
  failureReason: string | null;
}

export interface Reply {
  commandType: string;
  outcome: 'succeeded' | 'failed';
  payload: unknown;
  /** Attempts the participant made (1 when it succeeded or refused at once), and its failed attempts. */
  attempts?: number;
  failures?: { at: string; error: string }[];
}

export interface CommandToSend {
  step: string;
  action: Awaiting['action'];
  contract: CommandContract;
  payload: unknown;
  messageId: string;
  /** How the participant retries it. */
  retry: RetryPolicy;
}

export interface Transition<D> {
  state: SagaState<D>;
  send: CommandToSend | null;
}

const allSteps = <D>(definition: SagaDefinition<D>): StepDefinition<D>[] =>
  definition.afterCompensation ? [...definition.steps, definition.afterCompensation] : definition.steps;

/** The state of a new saga and its first command. `messageId` is the id the first command will carry. */
export function startSaga<D>(definition: SagaDefinition<D>, data: D, now: Date, messageId: string): Transition<D> {
  const state: SagaState<D> = {
    status: 'RUNNING',
    data,
    steps: allSteps(definition).map((step) => ({
      name: step.name,
      status: 'PENDING',
      attempts: 0,
      failures: [],
      startedAt: null,
      finishedAt: null,
      compensatedAt: null,
      error: null,
    })),
    awaiting: null,
    failureReason: null,
  };
  return invokeStep(definition, state, definition.steps[0], now, messageId);
}

/**
 * Applies the reply to the awaited command. The caller has checked that the reply answers `state.awaiting`.
 * `messageId` is the id the next command (if any) will carry.
 */
export function applyReply<D>(definition: SagaDefinition<D>, current: SagaState<D>, reply: Reply, now: Date, messageId: string): Transition<D> {
  const awaiting = current.awaiting!;
  const state = clone(current);
  const step = state.steps.find((candidate) => candidate.name === awaiting.step)!;
  const at = now.toISOString();
  const failure = reply.outcome === 'failed' ? (reply.payload as FailureReply) : null;

  if (awaiting.action === 'compensate') {
    if (failure) {
      Object.assign(step, { status: 'COMPENSATION_FAILED', error: describe(failure) });
      return finish(state, 'COMPENSATION_FAILED');
    }
    Object.assign(step, { status: 'COMPENSATED', compensatedAt: at });
    return compensateNext(definition, state, now, messageId);
  }

  const stepDefinition = allSteps(definition).find((candidate) => candidate.name === step.name)!;
  Object.assign(step, { attempts: reply.attempts ?? 1, failures: reply.failures ?? [] });
  if (failure) {
    Object.assign(step, { status: 'FAILED', finishedAt: at, error: describe(failure) });
    if (stepDefinition.afterPivot) {
      // Past the point of no return nothing is undone: the saga stops here and asks for attention.
      state.failureReason ??= describe(failure);
      return finish(state, 'FAILED');
    }
    state.failureReason = describe(failure);
    state.status = 'COMPENSATING';
    return compensateNext(definition, state, now, messageId);
  }

  Object.assign(step, { status: 'SUCCEEDED', finishedAt: at });
  if (stepDefinition.onSuccess) state.data = stepDefinition.onSuccess(state.data, reply.payload);
  if (stepDefinition === definition.afterCompensation) return finish(state, 'COMPENSATED');
  const next = definition.steps[definition.steps.indexOf(stepDefinition) + 1];
  return next ? invokeStep(definition, state, next, now, messageId) : finish(state, 'COMPLETED');
}

/** Undoes the most recent succeeded step that has a compensation; when none is left, runs the after-compensation step. */
function compensateNext<D>(definition: SagaDefinition<D>, state: SagaState<D>, now: Date, messageId: string): Transition<D> {
  const toUndo = [...definition.steps]
    .reverse()
    .find((step) => step.compensation && state.steps.find((candidate) => candidate.name === step.name)!.status === 'SUCCEEDED');
  if (toUndo) {
    const stepState = state.steps.find((candidate) => candidate.name === toUndo.name)!;
    stepState.status = 'COMPENSATING';
    return send(state, {
      step: toUndo.name,
      action: 'compensate',
      contract: toUndo.compensation!.command,
      payload: toUndo.compensation!.build(state.data, facts(state)),
      messageId,
      retry: definition.policy.compensationRetry,
    });
  }
  if (definition.afterCompensation) return invokeStep(definition, state, definition.afterCompensation, now, messageId);
  return finish(state, 'COMPENSATED');
}

function invokeStep<D>(definition: SagaDefinition<D>, state: SagaState<D>, step: StepDefinition<D>, now: Date, messageId: string): Transition<D> {
  const stepState = state.steps.find((candidate) => candidate.name === step.name)!;
  Object.assign(stepState, { status: 'RUNNING', startedAt: now.toISOString() });
  const retry = { ...(step.afterPivot ? definition.policy.retryAfterPivot : definition.policy.retry), ...step.retry };
  return send(state, { step: step.name, action: 'invoke', contract: step.invoke.command, payload: step.invoke.build(state.data, facts(state)), messageId, retry });
}

function send<D>(state: SagaState<D>, command: CommandToSend): Transition<D> {
  state.awaiting = { step: command.step, action: command.action, commandType: command.contract.type, messageId: command.messageId };
  return { state, send: command };
}

function finish<D>(state: SagaState<D>, status: SagaStatus): Transition<D> {
  state.status = status;
  state.awaiting = null;
  for (const step of state.steps) if (step.status === 'PENDING') step.status = 'SKIPPED';
  return { state, send: null };
}

const facts = (state: SagaState<unknown>): SagaFacts => ({ failureReason: state.failureReason });
const describe = (failure: FailureReply) => `${failure.code}: ${failure.reason}`;
const clone = <T>(value: T): T => structuredClone(value);
