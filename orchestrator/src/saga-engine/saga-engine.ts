import {
  activeTraceCarrier,
  COMMANDS,
  DeadLetterError,
  type Envelope,
  envelopeLogFields,
  FailureReply,
  type FaultPlan,
  FINAL_SAGA_STATUSES,
  HEADERS,
  newMessageId,
  parseFailures,
  parseReplyType,
  PermanentError,
  traceCarrierOf,
  type TraceCarrier,
  UnpublishableMessageError,
} from '@sagaflow/shared';
import type { Logger } from 'pino';
import { SagaCache } from './saga-cache.js';
import type { SagaDefinition } from './saga-definition.js';
import type { Saga, SagaEvent } from './saga.entities.js';
import { type SagaChange, type SagaRepository, type SagaUnitOfWork, SagaVersionConflict } from './saga-repository.js';
import { observeConflict, observeQueueWait, observeTimerLag, observing, sagaLogFields, type StepDone } from './saga-telemetry.js';
import {
  applyReply,
  applyTimer,
  awaitedCommand,
  delayedCommandSent,
  forceCompensation,
  nextTimerAt,
  resendAwaited,
  retryNow,
  setAside,
  startSaga,
  type Awaiting,
  type Transition,
} from './saga-state.js';

export interface StartSaga<D> {
  businessKey: string;
  correlationId: string;
  data: D;
  /** Faults for participants to inject, per command type (only with fault injection enabled). */
  faultPlan?: FaultPlan;
}

export class SagaNotFoundError extends Error {}

/** Something a person did about a saga, for its history. */
export interface OperatorAction {
  sagaId: string;
  action: string;
  detail: string;
  /** Who: the caller's id. */
  actor: string;
  messageId?: string;
}

/** Replies racing for one saga conflict on its version; the loser re-reads and tries again. */
const MAX_CONFLICT_RETRIES = 20;
/** A command the broker refused for now is tried again this much later (behind the sagas due meanwhile). */
const PUBLISH_RETRY_MS = 2_000;

/**
 * Runs saga definitions. The engine decides: each event (a start, a reply, a timer, an operator's action)
 * goes through the pure state machine, which turns a state and an event into a transition. The
 * repository persists: the saga row (version checked), one history row, and the command it sends, which
 * goes out once that has committed, so a reply can never overtake the state change that asked for it.
 * Replies come in batches (the replies in hand), all saved by one statement. The engine remembers each
 * saga as it last saved it, so a reply usually needs no read; the version check keeps that safe.
 */
export class SagaEngine {
  private readonly definitions = new Map<string, SagaDefinition<any>>();
  private readonly cache = new SagaCache();

  constructor(
    readonly repository: SagaRepository,
    private readonly logger: Logger,
  ) {}

  register(definition: SagaDefinition<any>): void {
    this.definitions.set(definition.name, definition);
  }

  /** The definition of a saga type: the one way to reach one. */
  definition(type: string): SagaDefinition<any> {
    const definition = this.definitions.get(type);
    if (!definition) throw new PermanentError(`no saga definition named ${type}`);
    return definition;
  }

  /**
   * Starts a saga; its first command is published once it has committed. Within `unit`, it commits with
   * whatever else that transaction writes (e.g. an idempotency key).
   */
  async start<D>(type: string, request: StartSaga<D>, unit?: SagaUnitOfWork): Promise<Saga> {
    const definition = this.definition(type);
    const now = new Date();
    const transition = startSaga(definition, request.data, now, newMessageId());
    const saga: Saga = {
      id: newMessageId(),
      type,
      businessKey: request.businessKey,
      correlationId: request.correlationId,
      status: transition.state.status,
      state: transition.state,
      faultPlan: request.faultPlan ?? null,
      timerAt: null,
      // The request's trace (when tracing is on) becomes the order's: every step and re-send continues it.
      traceContext: activeTraceCarrier(),
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
    const change = this.change(saga, definition, transition, now, '', [{ kind: 'saga-started' }]);
    if (unit) await unit.insert(change, now);
    else {
      await this.repository.insert(change, now);
      this.cache.keep(saga);
    }
    this.logger.debug({ ...sagaLogFields(saga), type, businessKey: request.businessKey }, 'saga started');
    return saga;
  }

  /**
   * A person's action from the console: `retry` sends the awaited command again now (or re-runs a failed
   * step or undo); `compensate` undoes a saga still before its pivot. Recorded in the saga's history.
   */
  async operate(sagaId: string, action: 'retry' | 'compensate', note: string, actor: string): Promise<Saga> {
    this.cache.forget(sagaId);
    const saga = await this.repository.transaction(async (unit) => {
      const [saga] = await unit.lock([sagaId]);
      if (!saga) return null;
      const definition = this.definition(saga.type);
      const now = new Date();
      const transition =
        action === 'retry' ? retryNow(definition, saga.state, now, newMessageId()) : forceCompensation(definition, saga.state, now, newMessageId(), note);
      const event: SagaEvent = { kind: 'operator-action', step: saga.state.awaiting?.step, outcome: action, detail: note, actor };
      await unit.save([this.change(saga, definition, transition, now, '', [event])]);
      return saga;
    });
    if (!saga) throw new SagaNotFoundError(`no saga ${sagaId}`);
    return saga;
  }

  /**
   * Records what a person did about sagas (e.g. replayed or discarded their dead letters): one transaction and
   * one statement for all of them, each saga's actions in one history row.
   */
  async recordOperatorActions(actions: OperatorAction[]): Promise<void> {
    const bySaga = new Map<string, SagaEvent[]>();
    for (const { sagaId, action, detail, actor, messageId } of actions) {
      bySaga.set(sagaId, [...(bySaga.get(sagaId) ?? []), { kind: 'operator-action', messageId, outcome: action, detail, actor }]);
    }
    if (bySaga.size === 0) return;
    for (const sagaId of bySaga.keys()) this.cache.forget(sagaId);
    await this.repository.transaction(async (unit) => {
      const now = new Date();
      await unit.save((await unit.lock([...bySaga.keys()])).map((saga) => ({ ...unchanged(saga, null, now), events: bySaga.get(saga.id)! })));
    });
  }

  /** The step a command type belongs to in a saga's definition (for showing a dead letter's step). */
  stepFor(sagaType: string, commandType: string): string | null {
    const definition = this.definitions.get(sagaType);
    const steps = definition ? [...definition.steps, ...(definition.afterCompensation ? [definition.afterCompensation] : [])] : [];
    const step = steps.find((candidate) => candidate.invoke.command.type === commandType || candidate.compensation?.command.type === commandType);
    return step ? (step.invoke.command.type === commandType ? step.name : `${step.name} (compensation)`) : null;
  }

  /**
   * Fires the timers that are due, a batch per transaction: a deadline moves its saga on; a command delayed
   * by a back-off, or committed without a confirmed publish, goes out. A command the broker confirmed has
   * no timer: it is never sent again because its reply is late. The rows are claimed with FOR UPDATE SKIP
   * LOCKED, so several orchestrators share the work without doing it twice; every decision of a tick uses
   * the one clock the claim used. One saga's trouble stays its own: a command that can never be published
   * is set aside with the reason, and one the broker cannot take for now (refused, or the broker away) is
   * tried again a little later, behind the sagas due before it. Returns how many sagas it moved on.
   */
  async fireDueTimers(batchSize = 50): Promise<number> {
    const now = new Date();
    if (!(await this.repository.anyTimerDue(now))) return 0;
    return this.repository.transaction(async (unit) => {
      const changes: SagaChange[] = [];
      const publishes: Promise<SagaChange>[] = [];
      const later = (saga: Saga) => ((saga.timerAt = new Date(now.getTime() + PUBLISH_RETRY_MS)), unchanged(saga, null, now));
      for (const saga of await unit.claimDueTimers(batchSize, now)) {
        this.cache.forget(saga.id);
        observeTimerLag(saga, now);
        try {
          const definition = this.definition(saga.type);
          const transition = applyTimer(definition, saga.state, now, newMessageId());
          if (transition) {
            changes.push(this.change(saga, definition, transition, now, '', []));
            this.logger.warn({ ...sagaLogFields(saga), ...transition.timer, status: saga.status }, 'saga timer fired');
            continue;
          }
          const awaiting = saga.state.awaiting;
          if (!awaiting || awaiting.setAside || (!awaiting.sendAt && unit.wasPublished(awaiting.messageId))) {
            changes.push(this.moved(saga, definition, saga.state, now));
            continue;
          }
          // Its publish is still under way here, or the broker cannot take it now: look again shortly.
          if (this.repository.publishing(awaiting.messageId) || !this.repository.canPublish()) {
            changes.push(later(saga));
            continue;
          }
          // Due after a back-off; or committed and never confirmed (this process died, or the broker refused):
          // its saga state committed long ago, so it is published first, then the timer moves on.
          const { command, state, event } = awaiting.sendAt
            ? { command: awaitedCommand(definition, saga.state)!, state: delayedCommandSent(saga.state), event: null }
            : this.unconfirmed(definition, saga.state, now);
          publishes.push(
            unit.publish(saga, command).then(
              () => this.moved(saga, definition, state, now, event),
              (error: Error) => this.publishFailed(saga, definition, error, now),
            ),
          );
        } catch (error) {
          changes.push(this.setAside(saga, (error as Error).message, now));
        }
      }
      changes.push(...(await Promise.all(publishes)));
      await unit.save(changes);
      return changes.filter((change) => change.events.length > 0).length;
    });
  }

  /** A saga whose awaited command went out (or needs nothing): its timer moves on to what it waits for next. */
  private moved(saga: Saga, definition: SagaDefinition<any>, state: Saga['state'], now: Date, event: SagaEvent | null = null): SagaChange {
    Object.assign(saga, { state, timerAt: nextTimerAt(definition, state) });
    return unchanged(saga, event, now);
  }

  /** A committed command nobody saw confirmed, sent again with its message id (the participant dedupes it). */
  private unconfirmed(definition: SagaDefinition<any>, current: Saga['state'], now: Date) {
    const { state, send } = resendAwaited(definition, current, now);
    const event: SagaEvent = { kind: 'command-sent', step: send!.step, messageId: send!.messageId, messageType: send!.contract.type, outcome: send!.action, detail: 'not confirmed by the broker: sent again' };
    return { command: send!, state, event };
  }

  /** A command the broker would not take: set aside if it never could, else tried again after a pause. */
  private publishFailed(saga: Saga, definition: SagaDefinition<any>, error: Error, now: Date): SagaChange {
    if (error instanceof UnpublishableMessageError) return this.setAside(saga, error.message, now, definition);
    this.logger.warn({ ...sagaLogFields(saga), err: error.message }, 'publish failed; trying again shortly');
    saga.timerAt = new Date(now.getTime() + PUBLISH_RETRY_MS);
    return unchanged(saga, null, now);
  }

  /** Sets a saga's awaited command aside (see setAside); one the engine cannot even read just stops its timer. */
  private setAside(saga: Saga, reason: string, now: Date, definition = this.definitions.get(saga.type)): SagaChange {
    this.logger.error({ ...sagaLogFields(saga), reason }, 'command set aside: it cannot be published; the saga waits for a person');
    if (definition && saga.state.awaiting) return this.change(saga, definition, setAside(saga.state, now, reason), now, '', []);
    saga.timerAt = null;
    return unchanged(saga, { kind: 'command-set-aside', detail: reason }, now);
  }

  /** Takes one reply: applies it if it answers the awaited command, records and ignores it otherwise. */
  async handleReply(reply: Envelope): Promise<void> {
    const [error] = await this.handleReplies([reply]);
    if (error) throw error;
  }

  /**
   * Takes the replies in hand together: one read for the sagas not remembered from their last save here,
   * one statement for every change (replies to one saga applied in turn); then the commands they caused
   * are published. Returns, per reply, nothing (done: ack it) or why it failed. A saga someone else moved
   * meanwhile (a second orchestrator) is read and decided again.
   */
  async handleReplies(replies: Envelope[]): Promise<(Error | undefined)[]> {
    const outcomes: (Error | undefined)[] = replies.map(() => undefined);
    let pending: ReplyInHand[] = [];
    replies.forEach((reply, index) => {
      try {
        pending.push({ index, reply, outcome: readReply(reply) });
      } catch (error) {
        outcomes[index] = error as Error;
      }
    });
    for (let attempt = 1; pending.length > 0; attempt++) {
      pending = await this.applyReplies(pending, outcomes);
      if (attempt >= MAX_CONFLICT_RETRIES) {
        for (const { index, reply } of pending) outcomes[index] = new SagaVersionConflict(`saga ${reply.sagaId} kept changing concurrently`);
        break;
      }
    }
    return outcomes;
  }

  /**
   * Decides every reply against its saga (as last saved here, else as read now) and saves all changes at
   * once; returns the replies to decide again on a fresh read: their saga moved meanwhile, or a
   * remembered state called them stale (only a fresh read may say that).
   */
  private async applyReplies(pending: ReplyInHand[], outcomes: (Error | undefined)[]): Promise<ReplyInHand[]> {
    const { sagas, remembered } = await this.sagasFor(pending);
    const bySaga = new Map<string, { change: SagaChange; replies: ReplyInHand[]; logs: (() => void)[] }>();
    const now = new Date();
    for (const item of pending) {
      const saga = sagas.get(item.reply.sagaId);
      try {
        if (!saga) throw new PermanentError(`no saga ${item.reply.sagaId}`);
        const { change, log } = this.decide(saga, item, now);
        const same = bySaga.get(saga.id);
        if (!same) bySaga.set(saga.id, { change, replies: [item], logs: [log] });
        else {
          same.change = merged(same.change, change);
          same.replies.push(item);
          same.logs.push(log);
        }
      } catch (error) {
        outcomes[item.index] = error as Error;
      }
    }
    const conflicted: ReplyInHand[] = [];
    const decided = [...bySaga.values()].filter(({ change, replies }) => {
      if (!(change.stale && remembered.has(change.saga.id))) return true;
      conflicted.push(...replies);
      return false;
    });
    const saved = decided.length ? await this.repository.save(decided.map(({ change }) => change)) : [];
    saved.forEach((ok, i) => {
      if (!ok) {
        observeConflict(decided[i].change.saga);
        return conflicted.push(...decided[i].replies);
      }
      this.cache.keep(decided[i].change.saga);
      decided[i].logs.forEach((log) => log());
    });
    return conflicted;
  }

  /** The replies' sagas: as last saved here where remembered (those ids in `remembered`), the others read in one query. */
  private async sagasFor(pending: ReplyInHand[]): Promise<{ sagas: Map<string, Saga>; remembered: Set<string> }> {
    const sagaIds = [...new Set(pending.map(({ reply }) => reply.sagaId))];
    const sagas = new Map<string, Saga>();
    for (const sagaId of sagaIds) {
      const saga = this.cache.take(sagaId);
      if (saga) sagas.set(sagaId, saga);
    }
    const remembered = new Set(sagas.keys());
    const toRead = sagaIds.filter((sagaId) => !remembered.has(sagaId));
    if (toRead.length) for (const [sagaId, saga] of await this.repository.loadMany(toRead)) sagas.set(sagaId, saga);
    return { sagas, remembered };
  }

  /** What a reply does to its saga (moved to its next state here, not saved yet), and the log line for once it is saved. */
  private decide(saga: Saga, { reply, outcome }: ReplyInHand, now: Date): { change: SagaChange; log: () => void } {
    const awaiting = saga.state.awaiting;
    const about = { messageId: reply.messageId, messageType: reply.type, outcome: outcome.outcome };
    if (!awaiting || awaiting.messageId !== reply.causationId || awaiting.commandType !== outcome.commandType) {
      // Late, duplicated or out-of-order: the saga has moved on. Recorded, not applied.
      const detail = awaiting ? `awaiting ${awaiting.commandType} ${awaiting.messageId}` : `saga is ${saga.status}`;
      return { change: unchanged(saga, { kind: 'reply-ignored', ...about, detail }, now), log: () => this.logger.info({ ...envelopeLogFields(reply), detail }, 'stale reply ignored') };
    }
    const definition = this.definition(saga.type);
    const transition = applyReply(definition, saga.state, { ...outcome, ...attemptsOf(reply) }, now, newMessageId());
    const failure = outcome.outcome === 'failed' ? (outcome.payload as FailureReply) : null;
    const timing = timingOf(reply, awaiting);
    const applied: SagaEvent = { ...about, kind: 'reply-applied', step: awaiting.step, detail: failure ? `${failure.code}: ${failure.reason}` : undefined, ...timing };
    if (timing.queuedMs !== undefined) observeQueueWait(timing.queuedMs, now);
    const done = observing() ? [{ ...stepDone(definition, awaiting, outcome.outcome, saga.state.steps), ...timing }] : undefined;
    // The next command continues the reply's trace (its processing span here, when tracing is on).
    const change = this.change(saga, definition, transition, now, reply.messageId, [applied], traceCarrierOf(reply.headers) ?? saga.traceContext);
    change.stepsDone = done;
    const { status, businessKey } = saga;
    return {
      change,
      log: () => {
        if (this.logger.isLevelEnabled('debug')) this.logger.debug({ ...envelopeLogFields(reply), step: awaiting.step, outcome: outcome.outcome, status }, 'reply applied');
        if (change.ended) this.logger.info({ ...envelopeLogFields(reply), status, businessKey, failureReason: saga.state.failureReason }, 'saga ended');
      },
    };
  }

  /** Moves a saga (in memory) to the transition's state; returns the change that saves it, with what happened. */
  private change(
    saga: Saga,
    definition: SagaDefinition<any>,
    transition: Transition<unknown>,
    now: Date,
    causationId: string,
    first: SagaEvent[],
    trace: TraceCarrier | null | undefined = saga.traceContext,
  ): SagaChange {
    const { state, send, timer } = transition;
    Object.assign(saga, { state, status: state.status, timerAt: nextTimerAt(definition, state), updatedAt: now });
    const events = [...first];
    if (send) {
      const detail = send.resend > 0 ? `resend ${send.resend}` : send.delayMs > 0 ? `after ${send.delayMs} ms` : undefined;
      events.push({ kind: 'command-sent', step: send.step, messageId: send.messageId, messageType: send.contract.type, outcome: send.action, detail });
    }
    if (timer) events.push({ kind: timer.kind, step: timer.step, detail: timer.detail });
    const ended = FINAL_SAGA_STATUSES.includes(state.status);
    if (ended) events.push({ kind: 'saga-ended', outcome: state.status, detail: state.failureReason ?? undefined });
    return { saga, events, send, causationId, ended, at: now, trace };
  }
}

/** The step a reply answered, and since when it had been waiting (see StepDone), from the state before the reply. */
function stepDone(definition: SagaDefinition<any>, awaiting: Awaiting, outcome: StepDone['outcome'], steps: { name: string; startedAt: string | null }[]): StepDone {
  const startedAt = awaiting.action === 'invoke' ? steps.find((step) => step.name === awaiting.step)?.startedAt : null;
  // A compensation keeps no start of its own: it runs from its last send.
  const startedAtMs = startedAt ? Date.parse(startedAt) : Date.parse(awaiting.sentAt);
  return { step: awaiting.step, action: awaiting.action, outcome, startedAtMs };
}

/** A change that leaves the saga's state as it is: only what happened (if anything) is recorded. */
function unchanged(saga: Saga, event: SagaEvent | null, at: Date): SagaChange {
  return { saga, events: event ? [event] : [], send: null, causationId: '', ended: false, at, stale: event?.kind === 'reply-ignored' };
}

/** Two changes of one saga in one batch as one: the later state, both histories, the later command. */
function merged(first: SagaChange, then: SagaChange): SagaChange {
  return {
    ...then,
    events: [...first.events, ...then.events],
    send: then.send ?? first.send,
    causationId: then.send ? then.causationId : first.causationId,
    trace: then.send ? then.trace : first.trace,
    stepsDone: first.stepsDone && then.stepsDone ? [...first.stepsDone, ...then.stepsDone] : (first.stepsDone ?? then.stepsDone),
    ended: first.ended || then.ended,
    stale: first.stale && then.stale,
  };
}

/** A reply read and checked, with its place in the batch it came in. */
interface ReplyInHand {
  index: number;
  reply: Envelope;
  outcome: { commandType: string; outcome: 'succeeded' | 'failed'; payload: unknown };
}

/** Checks a reply against the contract of the command it answers; a reply that breaks it is dead-lettered. */
function readReply(reply: Envelope): ReplyInHand['outcome'] {
  const kind = parseReplyType(reply.type);
  const contract = kind && COMMANDS.get(kind.commandType);
  if (!kind || !contract) throw new DeadLetterError('unknown-type', `${reply.type} is not a reply to a known command`);
  const schema = kind.outcome === 'succeeded' ? contract.result : FailureReply;
  const payload = schema.safeParse(reply.payload);
  if (!payload.success) throw new DeadLetterError('invalid-payload', `${reply.type}: ${payload.error.message}`);
  return { ...kind, payload: payload.data };
}

/**
 * How long the command waited in its queue (from its send to the participant's first start) and how long the
 * participant worked on it (retries included), as the reply tells; nothing for a reply that does not say.
 */
function timingOf(reply: Envelope, awaiting: Awaiting): { queuedMs?: number; workMs?: number } {
  const startedAt = reply.headers?.[HEADERS.startedAt];
  const workMs = reply.headers?.[HEADERS.workMs];
  return {
    ...(typeof startedAt === 'number' ? { queuedMs: Math.max(0, startedAt - Date.parse(awaiting.sentAt)) } : {}),
    ...(typeof workMs === 'number' ? { workMs } : {}),
  };
}

/** What the participant's reply says about its attempts (see the consumer's delayed retries). */
function attemptsOf(reply: Envelope): { attempts: number; failures: { at: string; error: string }[] } {
  return { attempts: Number(reply.headers?.[HEADERS.attempts] ?? 1), failures: parseFailures(reply.headers?.[HEADERS.failures]) };
}
