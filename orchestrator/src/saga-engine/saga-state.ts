import { retryDelayMs, type CommandContract, type FailureReply, type RetryPolicy, type SagaStatus } from '@sagaflow/shared';
import { z } from 'zod';
import type { SagaDefinition, SagaFacts, StepDefinition } from './saga-definition.js';

// Zod schemas, so that the API document (GET /openapi.json) shows the very shapes GET /orders/:id returns.
export const StepStatus = z.enum(['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED', 'SKIPPED']);
export type StepStatus = z.infer<typeof StepStatus>;

export const StepState = z.strictObject({
  name: z.string(),
  status: StepStatus,
  /** How many attempts the participant needed (retries included), as its reply said. */
  attempts: z.number().int(),
  /** When and why the failed attempts failed (delays between them follow the retry policy). */
  failures: z.array(z.strictObject({ at: z.string(), error: z.string() })),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  compensatedAt: z.string().nullable(),
  error: z.string().nullable(),
  /** Failed without an answer (timeout, deadline, forced): it may have acted all the same, so it is undone too. */
  mayHaveActed: z.boolean().optional(),
});
export type StepState = z.infer<typeof StepState>;

/** The one command whose reply the saga waits for; any other reply is stale. */
export const Awaiting = z.strictObject({
  step: z.string(),
  action: z.enum(['invoke', 'compensate']),
  commandType: z.string(),
  messageId: z.string(),
  /** How many times this command (this message id) went to the broker: 1, more only if a publish went unconfirmed or a person sent it again. */
  sends: z.number().int(),
  /** When it was last sent: its wait in the queue counts from here. */
  sentAt: z.string(),
  /** Refusals so far of this step's action, for those retried with back-off (compensations, steps after the pivot). */
  refusals: z.number().int(),
  /** A command sent after a back-off: when it is due (absent once it has gone out). */
  sendAt: z.string().optional(),
  /** The command can never be published as it is (too large, unencodable): it waits for a person, not for a timer. */
  setAside: z.strictObject({ at: z.string(), reason: z.string() }).optional(),
});
export type Awaiting = z.infer<typeof Awaiting>;

export interface SagaState<D> {
  status: SagaStatus;
  data: D;
  steps: StepState[];
  awaiting: Awaiting | null;
  failureReason: string | null;
  /** Past this, a saga still before its pivot is compensated. */
  deadlineAt: string | null;
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
  /** How many times it was sent before (0 the first time; the participant sees it as `x-resend`). */
  resend: number;
  /** Send it this much later (a durable delay in the outbox); 0 for now. */
  delayMs: number;
  /** How long the participant may work on one attempt (start-to-close). */
  workTimeoutMs: number;
  /** When the saga stops wanting it (its deadline, for a step before the pivot): it expires unexecuted. */
  expiresAt: string | null;
}

/** Something a timer did, for the saga's history. */
export interface TimerEvent {
  kind: 'deadline-exceeded' | 'command-set-aside';
  step: string;
  detail: string;
}

export interface Transition<D> {
  state: SagaState<D>;
  send: CommandToSend | null;
  timer?: TimerEvent;
}

const allSteps = <D>(definition: SagaDefinition<D>): StepDefinition<D>[] =>
  definition.afterCompensation ? [...definition.steps, definition.afterCompensation] : definition.steps;

/** What a step is before it has started; a stored step leaves out every field still at this value. */
const STEP_DEFAULTS: Omit<StepState, 'name' | 'status'> = { attempts: 0, failures: [], startedAt: null, finishedAt: null, compensatedAt: null, error: null };

/** The state as stored: step fields at their defaults left out (most steps are pending, or done at the first attempt). */
export function packState<D>(state: SagaState<D>): SagaState<D> {
  const steps = state.steps.map((step) => {
    const packed: Partial<StepState> = { name: step.name, status: step.status };
    if (step.attempts !== 0) packed.attempts = step.attempts;
    if (step.failures.length) packed.failures = step.failures;
    if (step.startedAt !== null) packed.startedAt = step.startedAt;
    if (step.finishedAt !== null) packed.finishedAt = step.finishedAt;
    if (step.compensatedAt !== null) packed.compensatedAt = step.compensatedAt;
    if (step.error !== null) packed.error = step.error;
    if (step.mayHaveActed !== undefined) packed.mayHaveActed = step.mayHaveActed;
    return packed as StepState;
  });
  return { ...state, steps };
}

/** A stored state made whole again (a state stored whole reads back the same). */
export function unpackState<D>(stored: SagaState<D>): SagaState<D> {
  return { ...stored, awaiting: stored.awaiting && fromOlderAwaiting(stored.awaiting), steps: stored.steps.map((step) => ({ ...STEP_DEFAULTS, ...step, failures: step.failures ?? [] })) };
}

/** A saga saved before commands were trusted to the broker kept when its reply timed out instead of when it was sent. */
function fromOlderAwaiting(awaiting: Awaiting & { timeoutAt?: string }): Awaiting {
  if (awaiting.timeoutAt === undefined) return awaiting;
  const { timeoutAt, ...rest } = awaiting;
  return { ...rest, sentAt: rest.sentAt ?? timeoutAt };
}

/** The state of a new saga and its first command. `messageId` is the id the first command will carry. */
export function startSaga<D>(definition: SagaDefinition<D>, data: D, now: Date, messageId: string): Transition<D> {
  const state: SagaState<D> = {
    status: 'RUNNING',
    data,
    steps: allSteps(definition).map((step) => ({ name: step.name, status: 'PENDING', ...STEP_DEFAULTS, failures: [] })),
    awaiting: null,
    failureReason: null,
    deadlineAt: new Date(now.getTime() + definition.policy.deadlineMs).toISOString(),
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
      step.error = describe(failure);
      // An undo that refuses is tried again later, up to the policy's attempts; then a person must look.
      if (awaiting.refusals + 1 < definition.policy.compensationRetry.attempts) {
        return compensate(definition, state, stepDefinitionNamed(definition, step.name), now, messageId, awaiting.refusals + 1);
      }
      Object.assign(step, { status: 'COMPENSATION_FAILED' });
      return finish(state, 'COMPENSATION_FAILED');
    }
    Object.assign(step, { status: 'COMPENSATED', compensatedAt: at });
    return compensateNext(definition, state, now, messageId);
  }

  const stepDefinition = allSteps(definition).find((candidate) => candidate.name === step.name)!;
  Object.assign(step, { attempts: reply.attempts ?? 1, failures: reply.failures ?? [] });
  if (failure) {
    if (stepDefinition.afterPivot) {
      // Past the point of no return nothing is undone: the step is tried again until it succeeds
      // (up to the policy's attempts; then the saga stops and asks for a person).
      step.error = describe(failure);
      if (awaiting.refusals + 1 < definition.policy.retryAfterPivot.attempts) {
        return invokeStep(definition, state, stepDefinition, now, messageId, awaiting.refusals + 1);
      }
      Object.assign(step, { status: 'FAILED', finishedAt: at });
      state.failureReason ??= describe(failure);
      return finish(state, 'FAILED');
    }
    Object.assign(step, { status: 'FAILED', finishedAt: at, error: describe(failure) });
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
  const toUndo = [...definition.steps].reverse().find((step) => {
    const stepState = state.steps.find((candidate) => candidate.name === step.name)!;
    return step.compensation && (stepState.status === 'SUCCEEDED' || (stepState.status === 'FAILED' && stepState.mayHaveActed));
  });
  if (toUndo) return compensate(definition, state, toUndo, now, messageId, 0);
  if (definition.afterCompensation) return invokeStep(definition, state, definition.afterCompensation, now, messageId);
  return finish(state, 'COMPENSATED');
}

/** Sends a step's command; `refusals` > 0 when it is sent again (new id) after a refusal, with back-off. */
function invokeStep<D>(definition: SagaDefinition<D>, state: SagaState<D>, step: StepDefinition<D>, now: Date, messageId: string, refusals = 0): Transition<D> {
  const stepState = state.steps.find((candidate) => candidate.name === step.name)!;
  Object.assign(stepState, { status: 'RUNNING', startedAt: stepState.startedAt ?? now.toISOString() });
  const retry = { ...(step.afterPivot ? definition.policy.retryAfterPivot : definition.policy.retry), ...step.retry };
  const delayMs = refusals > 0 ? retryDelayMs(retry, refusals) : 0;
  const payload = step.invoke.build(state.data, facts(state));
  const command = { step: step.name, action: 'invoke' as const, contract: step.invoke.command, payload, messageId, retry, resend: 0, delayMs, ...limits(definition, state, step, 'invoke') };
  return send(state, command, now, 1, refusals);
}

/** Sends a step's compensation; `refusals` > 0 when it is sent again (new id) after a refusal, with back-off. */
function compensate<D>(definition: SagaDefinition<D>, state: SagaState<D>, step: StepDefinition<D>, now: Date, messageId: string, refusals: number): Transition<D> {
  state.steps.find((candidate) => candidate.name === step.name)!.status = 'COMPENSATING';
  const retry = definition.policy.compensationRetry;
  const delayMs = refusals > 0 ? retryDelayMs(retry, refusals) : 0;
  const payload = step.compensation!.build(state.data, facts(state));
  const command = { step: step.name, action: 'compensate' as const, contract: step.compensation!.command, payload, messageId, retry, resend: 0, delayMs, ...limits(definition, state, step, 'compensate') };
  return send(state, command, now, 1, refusals);
}

/**
 * How long a participant may work on an attempt, and until when the saga wants the command at all: a step
 * before the pivot only until the deadline. Undos and steps after the pivot must run however late.
 */
function limits<D>(definition: SagaDefinition<D>, state: SagaState<D>, step: StepDefinition<D>, action: Awaiting['action']): Pick<CommandToSend, 'workTimeoutMs' | 'expiresAt'> {
  const expires = action === 'invoke' && !step.afterPivot && state.status === 'RUNNING';
  return { workTimeoutMs: (action === 'invoke' && step.workTimeoutMs) || definition.policy.workTimeoutMs, expiresAt: expires ? state.deadlineAt : null };
}

function send<D>(state: SagaState<D>, command: CommandToSend, now: Date, sends: number, refusals: number): Transition<D> {
  const sentAt = new Date(now.getTime() + command.delayMs).toISOString();
  state.awaiting = {
    step: command.step,
    action: command.action,
    commandType: command.contract.type,
    messageId: command.messageId,
    sends,
    sentAt,
    refusals,
    ...(command.delayMs > 0 ? { sendAt: sentAt } : {}),
  };
  return { state, send: command };
}

/**
 * When the engine must next look at this saga: a command delayed by a back-off, or the deadline of a saga
 * before its pivot; null when only a reply is awaited. A command the broker confirmed has no timer of its own.
 */
export function nextTimerAt<D>(definition: SagaDefinition<D>, state: SagaState<D>): Date | null {
  if (!state.awaiting) return null;
  const times = state.awaiting.sendAt && !state.awaiting.setAside ? [Date.parse(state.awaiting.sendAt)] : [];
  if (deadlineApplies(definition, state) && state.deadlineAt) times.push(Date.parse(state.deadlineAt) + REPLY_GRACE_MS);
  return times.length ? new Date(Math.min(...times)) : null;
}

/**
 * The awaited command cannot be published, ever, as it is: it is set aside with the reason, and the saga
 * waits for a person (the console's retry or compensate) instead of resending it. Its deadline still holds.
 */
export function setAside<D>(current: SagaState<D>, now: Date, reason: string): Transition<D> {
  const state = clone(current);
  const awaiting = state.awaiting;
  if (!awaiting) return { state, send: null };
  const { sendAt: _due, ...rest } = awaiting;
  state.awaiting = { ...rest, setAside: { at: now.toISOString(), reason } };
  return { state, send: null, timer: { kind: 'command-set-aside', step: awaiting.step, detail: `${awaiting.commandType} ${awaiting.messageId}: ${reason}` } };
}

/**
 * The command the saga waits on, as it was last sent (same message id): the saga's state is its outbox,
 * so a command lost between commit and publish is rebuilt from it and sent again.
 */
export function awaitedCommand<D>(definition: SagaDefinition<D>, state: SagaState<D>): CommandToSend | null {
  const awaiting = state.awaiting;
  if (!awaiting) return null;
  const stepDefinition = stepDefinitionNamed(definition, awaiting.step);
  const compensating = awaiting.action === 'compensate';
  const retry = compensating
    ? definition.policy.compensationRetry
    : { ...(stepDefinition.afterPivot ? definition.policy.retryAfterPivot : definition.policy.retry), ...stepDefinition.retry };
  const invocation = compensating ? stepDefinition.compensation! : stepDefinition.invoke;
  return {
    step: awaiting.step,
    action: awaiting.action,
    contract: invocation.command,
    payload: invocation.build(state.data, facts(state)),
    messageId: awaiting.messageId,
    retry,
    resend: awaiting.sends - 1,
    delayMs: 0,
    ...limits(definition, state, stepDefinition, awaiting.action),
  };
}

/** The state once a delayed command has gone out: nothing left to send, only its reply to wait for. */
export function delayedCommandSent<D>(state: SagaState<D>): SagaState<D> {
  if (!state.awaiting?.sendAt) return state;
  const { sendAt: _sent, ...awaiting } = state.awaiting;
  return { ...state, awaiting };
}

/**
 * Commands expire at the deadline, and the saga gives up this much later: the reply to work a participant
 * committed just in time still lands, instead of that work being undone (a charge refunded).
 */
export const REPLY_GRACE_MS = 5_000;

/**
 * What a due timer does: past the deadline (and its reply grace), a saga still before its pivot fails the awaited step and is
 * compensated; the reason names the step and how long its command has waited unanswered. The step may
 * still have acted (every undo is safe either way), but its command no longer runs: it expires. Any other
 * due timer (a command delayed by a back-off, or one nobody saw confirmed) is the engine's to send.
 * `messageId` is for a command sent afresh.
 */
export function applyTimer<D>(definition: SagaDefinition<D>, current: SagaState<D>, now: Date, messageId: string): Transition<D> | null {
  const awaiting = current.awaiting;
  if (!awaiting || !deadlineApplies(definition, current) || !current.deadlineAt || Date.parse(current.deadlineAt) + REPLY_GRACE_MS > now.getTime()) return null;
  const state = clone(current);
  const step = state.steps.find((candidate) => candidate.name === awaiting.step)!;
  const waitedSeconds = (Math.max(0, now.getTime() - Date.parse(awaiting.sentAt)) / 1_000).toFixed(1);
  const waited = awaiting.setAside
    ? `was set aside (${awaiting.setAside.reason})`
    : `went unanswered for ${waitedSeconds} s (waiting in its queue, in a participant's hands or in its .dlq)`;
  const detail = `DEADLINE_EXCEEDED: ${step.name}'s ${awaiting.commandType} ${waited}; the saga must reach its pivot within ${definition.policy.deadlineMs} ms`;
  Object.assign(step, { status: 'FAILED', finishedAt: now.toISOString(), error: detail, mayHaveActed: true });
  state.failureReason = detail;
  state.status = 'COMPENSATING';
  return { ...compensateNext(definition, state, now, messageId), timer: { kind: 'deadline-exceeded', step: step.name, detail } };
}

/**
 * Sends the awaited command again, with its message id, so that the participant can tell it is the same: a
 * person's retry, or a publish the broker never confirmed. Never because a reply is late.
 */
export function resendAwaited<D>(definition: SagaDefinition<D>, current: SagaState<D>, now: Date): Transition<D> {
  const state = clone(current);
  const awaiting = state.awaiting!;
  const command = { ...awaitedCommand(definition, state)!, resend: awaiting.sends };
  return send(state, command, now, awaiting.sends + 1, awaiting.refusals);
}

/** The deadline only concerns a saga that is still running the steps before its pivot. */
function deadlineApplies<D>(definition: SagaDefinition<D>, state: SagaState<D>): boolean {
  return state.status === 'RUNNING' && state.awaiting?.action === 'invoke' && !stepDefinitionNamed(definition, state.awaiting.step).afterPivot;
}

const stepDefinitionNamed = <D>(definition: SagaDefinition<D>, name: string): StepDefinition<D> => allSteps(definition).find((step) => step.name === name)!;

function finish<D>(state: SagaState<D>, status: SagaStatus): Transition<D> {
  state.status = status;
  state.awaiting = null;
  for (const step of state.steps) if (step.status === 'PENDING') step.status = 'SKIPPED';
  return { state, send: null };
}

const facts = (state: SagaState<unknown>): SagaFacts => ({ failureReason: state.failureReason });
const describe = (failure: FailureReply) => `${failure.code}: ${failure.reason}`;
/**
 * The copy a transition changes, leaving the state it was given as it was. Steps and what is awaited are
 * copied; the data is shared, since a step's `onSuccess` folds it into new data and never changes it. (A
 * deep copy of the whole state was the orchestrator's largest single cost at load.)
 */
const clone = <D>(state: SagaState<D>): SagaState<D> => ({
  ...state,
  steps: state.steps.map((step) => ({ ...step, failures: [...step.failures] })),
  awaiting: state.awaiting && { ...state.awaiting },
});

/** An operator's request the saga's state does not allow (the console answers 409). */
export class NotAllowedError extends Error {}

/**
 * The console's "retry": a saga waiting for a reply has its command sent again now (same message id); a
 * FAILED saga runs its failed step again, a COMPENSATION_FAILED one its failed undo (new message ids).
 */
export function retryNow<D>(definition: SagaDefinition<D>, current: SagaState<D>, now: Date, messageId: string): Transition<D> {
  const state = clone(current);
  if (state.awaiting) return resendAwaited(definition, state, now);
  if (state.status === 'FAILED') {
    const failed = state.steps.find((step) => step.status === 'FAILED' && stepDefinitionNamed(definition, step.name).afterPivot);
    if (!failed) throw new NotAllowedError('the saga failed before its pivot and was compensated: there is nothing to retry');
    state.status = 'RUNNING';
    return invokeStep(definition, state, stepDefinitionNamed(definition, failed.name), now, messageId);
  }
  if (state.status === 'COMPENSATION_FAILED') {
    const failed = state.steps.find((step) => step.status === 'COMPENSATION_FAILED')!;
    state.status = 'COMPENSATING';
    return compensate(definition, state, stepDefinitionNamed(definition, failed.name), now, messageId, 0);
  }
  throw new NotAllowedError(`a ${state.status} saga has nothing to retry`);
}

/** The console's "compensate": a saga still before its pivot fails its current step now and is undone. */
export function forceCompensation<D>(definition: SagaDefinition<D>, current: SagaState<D>, now: Date, messageId: string, reason: string): Transition<D> {
  const state = clone(current);
  const awaiting = state.awaiting;
  if (state.status !== 'RUNNING' || awaiting?.action !== 'invoke' || stepDefinitionNamed(definition, awaiting.step).afterPivot) {
    throw new NotAllowedError(`only a saga running the steps before its pivot can be compensated (this one is ${state.status}${awaiting ? ` at ${awaiting.step}` : ''})`);
  }
  const detail = `FORCED_COMPENSATION: ${reason}`;
  Object.assign(state.steps.find((step) => step.name === awaiting.step)!, { status: 'FAILED', finishedAt: now.toISOString(), error: detail, mayHaveActed: true });
  state.failureReason = detail;
  state.status = 'COMPENSATING';
  return compensateNext(definition, state, now, messageId);
}
