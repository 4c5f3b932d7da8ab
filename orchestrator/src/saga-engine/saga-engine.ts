import { MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import {
  COMMANDS,
  EXCHANGES,
  FailureReply,
  newMessageId,
  type Outbox,
  type OutboxMessage,
  type OutboxRelay,
  type OutboxRow,
  parseReplyType,
  PermanentError,
  SCHEMA_VERSION,
  DeadLetterError,
  FINAL_SAGA_STATUSES,
  SAGA_ENDED_CHANNEL,
  type Envelope,
  type FaultPlan,
  HEADERS,
  parseFailures,
} from '@sagaflow/shared';
import type { Logger } from 'pino';
import type { SagaDefinition } from './saga-definition.js';
import { type SagaEventRow, type SagaRow, SagaStore, SagaVersionConflict, type SagaWrite } from './saga-store.js';
import { applyReply, applyTimer, forceCompensation, nextTimerAt, retryNow, startSaga, type SagaState, type Transition } from './saga-state.js';

export interface StartSaga<D> {
  businessKey: string;
  correlationId: string;
  data: D;
  /** Faults for participants to inject, per command type (only with fault injection enabled). */
  faultPlan?: FaultPlan;
}

export class SagaNotFoundError extends Error {}

/** Replies racing for one saga conflict on its version; the loser re-reads and tries again. */
const MAX_CONFLICT_RETRIES = 20;

/**
 * Runs saga definitions. Each transition (start, one reply, a timer, an operator's action) is computed by
 * the pure state machine and written by the store as one atomic statement: the saga row (version
 * checked), its history, and the next command in the outbox. The command is published after that
 * commit, so a reply can never overtake the state change that sent its command.
 */
export class SagaEngine {
  private readonly definitions = new Map<string, SagaDefinition<any>>();
  private readonly store: SagaStore;

  constructor(
    private readonly orm: MikroORM,
    outbox: Outbox,
    private readonly relay: OutboxRelay,
    private readonly logger: Logger,
  ) {
    this.store = new SagaStore(outbox);
  }

  register(definition: SagaDefinition<any>): void {
    this.definitions.set(definition.name, definition);
  }

  /** Starts a saga and publishes its first command. */
  async start<D>(definition: SagaDefinition<D>, request: StartSaga<D>): Promise<SagaRow> {
    const { saga, outgoing } = await this.startIn(this.orm.em.fork(), definition, request);
    void this.afterCommit(outgoing);
    return saga;
  }

  /**
   * Starts a saga with the caller's entity manager (inside its transaction, to commit it with something
   * else, e.g. an idempotency key). The caller passes `outgoing` to `afterCommit()` once committed.
   */
  async startIn<D>(em: EntityManager, definition: SagaDefinition<D>, request: StartSaga<D>): Promise<{ saga: SagaRow; outgoing: OutboxRow[] }> {
    const now = new Date();
    const transition = startSaga(definition, request.data, now, newMessageId());
    const saga: SagaRow = {
      id: newMessageId(),
      type: definition.name,
      businessKey: request.businessKey,
      correlationId: request.correlationId,
      faultPlan: request.faultPlan ?? null,
      ...persisted(definition, transition.state),
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
    const started: SagaEventRow = { ...NO_EVENT_DETAIL, at: now, kind: 'saga-started' };
    const outgoing = await this.store.insert(em, this.writeOf(saga, transition, now, '', [started]));
    this.logger.debug({ sagaId: saga.id, type: definition.name, businessKey: request.businessKey }, 'saga started');
    return { saga, outgoing };
  }

  /** Publishes the commands a committed transition wrote to the outbox, now rather than at the next poll. */
  afterCommit(outgoing: OutboxRow[]): Promise<void> {
    return this.relay.dispatch(outgoing);
  }

  /**
   * A person's action from the console: `retry` sends the awaited command again now (or re-runs a failed
   * step or undo); `compensate` undoes a saga still before its pivot. Recorded in the saga's history.
   */
  async operate(sagaId: string, action: 'retry' | 'compensate', note: string): Promise<SagaRow> {
    const result = await this.orm.em.fork().transactional(async (em) => {
      const saga = await this.store.load(em, sagaId, { lock: true });
      if (!saga) return null;
      const definition = this.definitionOf(saga);
      const now = new Date();
      const transition =
        action === 'retry' ? retryNow(definition, stateOf(saga), now, newMessageId()) : forceCompensation(definition, stateOf(saga), now, newMessageId(), note);
      const event: SagaEventRow = { ...NO_EVENT_DETAIL, at: now, step: saga.awaiting?.step ?? null, kind: 'operator-action', outcome: action, detail: note };
      return { saga, outgoing: await this.advance(em, saga, definition, transition, now, '', [event]) };
    });
    if (!result) throw new SagaNotFoundError(`no saga ${sagaId}`);
    await this.afterCommit(result.outgoing);
    return result.saga;
  }

  /** Records something a person did about a saga (e.g. replayed or discarded one of its dead letters). */
  async recordOperatorAction(sagaId: string, action: string, detail: string, messageId: string | null = null): Promise<void> {
    const em = this.orm.em.fork();
    if (!(await this.store.load(em, sagaId))) return;
    await this.store.appendEvent(em, sagaId, { ...NO_EVENT_DETAIL, at: new Date(), kind: 'operator-action', messageId, outcome: action, detail });
  }

  /** The step a command type belongs to in a saga's definition (for showing a dead letter's step). */
  stepFor(sagaType: string, commandType: string): string | null {
    const definition = this.definitions.get(sagaType);
    const steps = definition ? [...definition.steps, ...(definition.afterCompensation ? [definition.afterCompensation] : [])] : [];
    const step = steps.find((candidate) => candidate.invoke.command.type === commandType || candidate.compensation?.command.type === commandType);
    return step ? (step.invoke.command.type === commandType ? step.name : `${step.name} (compensation)`) : null;
  }

  /**
   * Fires the timers that are due (reply timeouts, deadlines), a batch per transaction. The rows are
   * claimed with FOR UPDATE SKIP LOCKED, so several orchestrators share the work without doing it twice.
   * Returns how many sagas it moved on.
   */
  async fireDueTimers(batchSize = 50): Promise<number> {
    const outgoing: OutboxRow[] = [];
    const fired = await this.orm.em.fork().transactional(async (em) => {
      let moved = 0;
      for (const saga of await this.store.claimDueTimers(em, batchSize)) {
        const definition = this.definitions.get(saga.type);
        if (!definition) continue;
        const now = new Date();
        const transition = applyTimer(definition, stateOf(saga), now, newMessageId());
        if (!transition) {
          // Nothing due after all (e.g. the reply came meanwhile): just move the timer on.
          saga.timerAt = nextTimerAt(definition, stateOf(saga));
          await this.store.update(em, { saga, events: [], messages: [] });
          continue;
        }
        outgoing.push(...(await this.advance(em, saga, definition, transition, now, '')));
        this.logger.warn({ sagaId: saga.id, ...transition.timer, status: saga.status }, 'saga timer fired');
        moved++;
      }
      return moved;
    });
    await this.afterCommit(outgoing);
    return fired;
  }

  /** Takes one reply: applies it if it answers the awaited command, records and ignores it otherwise. */
  async handleReply(reply: Envelope): Promise<void> {
    const kind = parseReplyType(reply.type);
    const contract = kind && COMMANDS.get(kind.commandType);
    if (!kind || !contract) throw new DeadLetterError('unknown-type', `${reply.type} is not a reply to a known command`);
    const schema = kind.outcome === 'succeeded' ? contract.result : FailureReply;
    const payload = schema.safeParse(reply.payload);
    if (!payload.success) throw new DeadLetterError('invalid-payload', `${reply.type}: ${payload.error.message}`);

    for (let attempt = 1; ; attempt++) {
      try {
        const outgoing = await this.applyReplyOnce(this.orm.em.fork(), reply, { ...kind, payload: payload.data });
        // The reply is acked once the next command is confirmed (or left to the outbox poll).
        await this.afterCommit(outgoing);
        return;
      } catch (error) {
        if (!(error instanceof SagaVersionConflict) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
    }
  }

  private async applyReplyOnce(
    em: EntityManager,
    reply: Envelope,
    outcome: { commandType: string; outcome: 'succeeded' | 'failed'; payload: unknown },
  ): Promise<OutboxRow[]> {
    const saga = await this.store.load(em, reply.sagaId);
    if (!saga) throw new PermanentError(`no saga ${reply.sagaId}`);
    const log = this.logger.child({ sagaId: saga.id, messageId: reply.messageId, type: reply.type });
    const now = new Date();
    const awaiting = saga.awaiting;
    const about = { messageId: reply.messageId, messageType: reply.type, outcome: outcome.outcome };
    if (!awaiting || awaiting.messageId !== reply.causationId || awaiting.commandType !== outcome.commandType) {
      // Late, duplicated or out-of-order: the saga has moved on. Recorded, not applied.
      const detail = awaiting ? `awaiting ${awaiting.commandType} ${awaiting.messageId}` : `saga is ${saga.status}`;
      await this.store.appendEvent(em, saga.id, { ...NO_EVENT_DETAIL, ...about, at: now, kind: 'reply-ignored', detail });
      log.info({ detail }, 'stale reply ignored');
      return [];
    }
    const definition = this.definitionOf(saga);
    const transition = applyReply(definition, stateOf(saga), { ...outcome, ...attemptsOf(reply) }, now, newMessageId());
    const failure = outcome.outcome === 'failed' ? (outcome.payload as FailureReply) : null;
    const applied: SagaEventRow = { ...about, at: now, step: awaiting.step, kind: 'reply-applied', detail: failure ? `${failure.code}: ${failure.reason}` : null };
    const outgoing = await this.advance(em, saga, definition, transition, now, reply.messageId, [applied]);
    log.debug({ step: awaiting.step, outcome: outcome.outcome, status: saga.status }, 'reply applied');
    if (FINAL_SAGA_STATUSES.includes(saga.status)) log.info({ status: saga.status, businessKey: saga.businessKey, failureReason: saga.failureReason }, 'saga ended');
    return outgoing;
  }

  /** Moves a saga read from the store to the transition's state and saves it, its history and its command. */
  private advance(
    em: EntityManager,
    saga: SagaRow,
    definition: SagaDefinition<any>,
    transition: Transition<unknown>,
    now: Date,
    causationId: string,
    first: SagaEventRow[] = [],
  ): Promise<OutboxRow[]> {
    Object.assign(saga, persisted(definition, transition.state), { updatedAt: now });
    return this.store.update(em, this.writeOf(saga, transition, now, causationId, first));
  }

  private definitionOf(saga: SagaRow): SagaDefinition<any> {
    const definition = this.definitions.get(saga.type);
    if (!definition) throw new PermanentError(`no saga definition named ${saga.type}`);
    return definition;
  }

  /** What a transition writes besides the saga row: its history (`first`, then what it sent and ended) and its command. */
  private writeOf(saga: SagaRow, transition: Transition<unknown>, now: Date, causationId: string, first: SagaEventRow[] = []): SagaWrite {
    const { send, state } = transition;
    const events = [...first];
    const messages: OutboxMessage[] = [];
    if (send) {
      const envelope: Envelope = {
        messageId: send.messageId,
        type: send.contract.type,
        sagaId: saga.id,
        correlationId: saga.correlationId,
        causationId,
        schemaVersion: SCHEMA_VERSION,
        payload: send.payload,
        headers: {
          [HEADERS.retryPolicy]: JSON.stringify(send.retry),
          [HEADERS.attempt]: 1,
          [HEADERS.resend]: send.resend,
          ...(saga.faultPlan?.[send.contract.type] ? { [HEADERS.faultPlan]: JSON.stringify(saga.faultPlan[send.contract.type]) } : {}),
        },
      };
      const notBefore = send.delayMs > 0 ? new Date(now.getTime() + send.delayMs) : undefined;
      const detail = send.resend > 0 ? `resend ${send.resend}` : notBefore ? `after ${send.delayMs} ms` : null;
      events.push({ at: now, step: send.step, kind: 'command-sent', messageId: send.messageId, messageType: send.contract.type, outcome: send.action, detail });
      messages.push({ exchange: EXCHANGES.commands, routingKey: send.contract.type, envelope, notBefore });
    }
    if (transition.timer) {
      const { kind, step, detail } = transition.timer;
      events.push({ ...NO_EVENT_DETAIL, at: now, step, kind, detail });
    }
    const ended = FINAL_SAGA_STATUSES.includes(state.status);
    if (ended) events.push({ ...NO_EVENT_DETAIL, at: now, kind: 'saga-ended', outcome: state.status, detail: state.failureReason });
    // Delivered on commit to whoever LISTENs (the benchmark's closed loop), so nobody has to poll for the end.
    const notify = ended
      ? { channel: SAGA_ENDED_CHANNEL, payload: JSON.stringify({ sagaId: saga.id, type: saga.type, businessKey: saga.businessKey, status: state.status }) }
      : undefined;
    return { saga, events, messages, notify };
  }
}

const NO_EVENT_DETAIL = { step: null, messageId: null, messageType: null, outcome: null, detail: null } as const;

/** What the participant's reply says about its attempts (see the consumer's delayed retries). */
function attemptsOf(reply: Envelope): { attempts: number; failures: { at: string; error: string }[] } {
  return { attempts: Number(reply.headers?.[HEADERS.attempts] ?? 1), failures: parseFailures(reply.headers?.[HEADERS.failures]) };
}

const persisted = (definition: SagaDefinition<any>, state: SagaState<unknown>) => ({
  status: state.status,
  data: state.data as Record<string, unknown>,
  steps: state.steps,
  awaiting: state.awaiting,
  failureReason: state.failureReason,
  deadlineAt: state.deadlineAt ? new Date(state.deadlineAt) : null,
  timerAt: nextTimerAt(definition, state),
});

const stateOf = (saga: SagaRow): SagaState<unknown> => ({
  status: saga.status,
  data: saga.data,
  steps: saga.steps,
  awaiting: saga.awaiting ?? null,
  failureReason: saga.failureReason ?? null,
  deadlineAt: saga.deadlineAt?.toISOString() ?? null,
});
