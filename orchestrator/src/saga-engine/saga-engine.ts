import { MikroORM, OptimisticLockError, type EntityManager } from '@mikro-orm/postgresql';
import {
  COMMANDS,
  EXCHANGES,
  FailureReply,
  newMessageId,
  Outbox,
  type OutboxRelay,
  parseReplyType,
  PermanentError,
  SCHEMA_VERSION,
  DeadLetterError,
  type Envelope,
  type FaultPlan,
  HEADERS,
  parseFailures,
} from '@sagaflow/shared';
import type { Logger } from 'pino';
import type { SagaDefinition } from './saga-definition.js';
import { SagaEvent, SagaInstance } from './saga.entities.js';
import { applyReply, applyTimer, FINAL_STATUSES, forceCompensation, nextTimerAt, retryNow, startSaga, type SagaState, type Transition } from './saga-state.js';

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
 * Runs saga definitions. Each transition (start, or one reply) is one transaction: the saga row (version
 * checked), its history, and the next command in the outbox. The relay publishes after commit, so a
 * reply can never overtake the state change that sent its command.
 */
export class SagaEngine {
  private readonly definitions = new Map<string, SagaDefinition<any>>();
  /** When delayed sends written by transactions that just committed become due. */
  private readonly delayedSends: Date[] = [];

  constructor(
    private readonly orm: MikroORM,
    private readonly outbox: Outbox,
    private readonly relay: OutboxRelay,
    private readonly logger: Logger,
  ) {}

  register(definition: SagaDefinition<any>): void {
    this.definitions.set(definition.name, definition);
  }

  /** Starts a saga in its own transaction and publishes its first command. */
  async start<D>(definition: SagaDefinition<D>, request: StartSaga<D>): Promise<SagaInstance> {
    const saga = await this.orm.em.fork().transactional((em) => this.startIn(em, definition, request));
    this.afterCommit();
    return saga;
  }

  /**
   * Starts a saga inside the caller's transaction (to commit it with something else, e.g. an idempotency
   * key). The caller calls `afterCommit()` once the transaction has committed.
   */
  async startIn<D>(em: EntityManager, definition: SagaDefinition<D>, request: StartSaga<D>): Promise<SagaInstance> {
    const sagaId = newMessageId();
    const now = new Date();
    const transition = startSaga(definition, request.data, now, newMessageId());
    const saga = em.create(SagaInstance, {
      id: sagaId,
      type: definition.name,
      businessKey: request.businessKey,
      correlationId: request.correlationId,
      faultPlan: request.faultPlan ?? null,
      ...persisted(definition, transition.state),
      createdAt: now,
      updatedAt: now,
    });
    em.create(SagaEvent, { sagaId, at: now, step: null, kind: 'saga-started', messageId: null, messageType: null, outcome: null, detail: null });
    await this.record(em, saga, transition, now, '');
    this.logger.info({ sagaId, type: definition.name, businessKey: request.businessKey }, 'saga started');
    return saga;
  }

  /** Publishes what committed transactions left in the outbox, now rather than at the next poll. */
  afterCommit(): void {
    this.relay.kick();
    for (const when of this.delayedSends.splice(0)) this.relay.kickAt(when);
  }

  /**
   * A person's action from the console: `retry` sends the awaited command again now (or re-runs a failed
   * step or undo); `compensate` undoes a saga still before its pivot. Recorded in the saga's history.
   */
  async operate(sagaId: string, action: 'retry' | 'compensate', note: string): Promise<SagaInstance> {
    const saga = await this.orm.em.fork().transactional(async (em) => {
      const saga = await em.findOne(SagaInstance, sagaId);
      if (!saga) return null;
      const definition = this.definitions.get(saga.type)!;
      const now = new Date();
      const transition =
        action === 'retry' ? retryNow(definition, stateOf(saga), now, newMessageId()) : forceCompensation(definition, stateOf(saga), now, newMessageId(), note);
      em.create(SagaEvent, { sagaId, at: now, step: saga.awaiting?.step ?? null, kind: 'operator-action', messageId: null, messageType: null, outcome: action, detail: note });
      Object.assign(saga, persisted(definition, transition.state), { updatedAt: now });
      await this.record(em, saga, transition, now, '');
      return saga;
    });
    if (!saga) throw new SagaNotFoundError(`no saga ${sagaId}`);
    this.afterCommit();
    return saga;
  }

  /** Records something a person did about a saga (e.g. replayed or discarded one of its dead letters). */
  async recordOperatorAction(sagaId: string, action: string, detail: string, messageId: string | null = null): Promise<void> {
    const em = this.orm.em.fork();
    if (!(await em.findOne(SagaInstance, sagaId))) return;
    em.create(SagaEvent, { sagaId, at: new Date(), step: null, kind: 'operator-action', messageId, messageType: null, outcome: action, detail });
    await em.flush();
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
    const fired = await this.orm.em.fork().transactional(async (em) => {
      const due = await em.execute<{ id: string }[]>(
        `select id from "orchestrator"."saga" where timer_at <= now() order by timer_at limit ? for update skip locked`,
        [batchSize],
      );
      let moved = 0;
      for (const { id } of due) {
        const saga = await em.findOneOrFail(SagaInstance, id);
        const definition = this.definitions.get(saga.type);
        if (!definition) continue;
        const now = new Date();
        const transition = applyTimer(definition, stateOf(saga), now, newMessageId());
        if (!transition) {
          saga.timerAt = nextTimerAt(definition, stateOf(saga));
          continue;
        }
        Object.assign(saga, persisted(definition, transition.state), { updatedAt: now });
        await this.record(em, saga, transition, now, '');
        this.logger.warn({ sagaId: saga.id, ...transition.timer, status: saga.status }, 'saga timer fired');
        moved++;
      }
      return moved;
    });
    if (fired) this.afterCommit();
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
        await this.orm.em.fork().transactional((em) => this.applyReplyOnce(em, reply, { ...kind, payload: payload.data }));
        break;
      } catch (error) {
        if (!(error instanceof OptimisticLockError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      }
    }
    this.afterCommit();
  }

  private async applyReplyOnce(em: EntityManager, reply: Envelope, outcome: { commandType: string; outcome: 'succeeded' | 'failed'; payload: unknown }) {
    const saga = await em.findOne(SagaInstance, reply.sagaId);
    if (!saga) throw new PermanentError(`no saga ${reply.sagaId}`);
    const log = this.logger.child({ sagaId: saga.id, messageId: reply.messageId, type: reply.type });
    const now = new Date();
    const awaiting = saga.awaiting;
    if (!awaiting || awaiting.messageId !== reply.causationId || awaiting.commandType !== outcome.commandType) {
      // Late, duplicated or out-of-order: the saga has moved on. Recorded, not applied.
      const detail = awaiting ? `awaiting ${awaiting.commandType} ${awaiting.messageId}` : `saga is ${saga.status}`;
      em.create(SagaEvent, { sagaId: saga.id, at: now, step: null, kind: 'reply-ignored', messageId: reply.messageId, messageType: reply.type, outcome: outcome.outcome, detail });
      log.info({ detail }, 'stale reply ignored');
      return;
    }
    const definition = this.definitions.get(saga.type);
    if (!definition) throw new PermanentError(`no saga definition named ${saga.type}`);
    const transition = applyReply(definition, stateOf(saga), { ...outcome, ...attemptsOf(reply) }, now, newMessageId());
    em.create(SagaEvent, {
      sagaId: saga.id,
      at: now,
      step: awaiting.step,
      kind: 'reply-applied',
      messageId: reply.messageId,
      messageType: reply.type,
      outcome: outcome.outcome,
      detail: outcome.outcome === 'failed' ? `${(outcome.payload as FailureReply).code}: ${(outcome.payload as FailureReply).reason}` : null,
    });
    Object.assign(saga, persisted(definition, transition.state), { updatedAt: now });
    await this.record(em, saga, transition, now, reply.messageId);
    log.info({ step: awaiting.step, outcome: outcome.outcome, status: saga.status }, 'reply applied');
  }

  /** Writes what a transition sends (outbox) and ends (history), inside the caller's transaction. */
  private async record(em: EntityManager, saga: SagaInstance, transition: Transition<unknown>, now: Date, causationId: string) {
    const { send, state } = transition;
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
      em.create(SagaEvent, { sagaId: saga.id, at: now, step: send.step, kind: 'command-sent', messageId: send.messageId, messageType: send.contract.type, outcome: send.action, detail });
      await this.outbox.add(em, [{ exchange: EXCHANGES.commands, routingKey: send.contract.type, envelope, notBefore }]);
      if (notBefore) this.delayedSends.push(notBefore);
    }
    if (transition.timer) {
      const { kind, step, detail } = transition.timer;
      em.create(SagaEvent, { sagaId: saga.id, at: now, step, kind, messageId: null, messageType: null, outcome: null, detail });
    }
    if (FINAL_STATUSES.includes(state.status)) {
      em.create(SagaEvent, { sagaId: saga.id, at: now, step: null, kind: 'saga-ended', messageId: null, messageType: null, outcome: state.status, detail: state.failureReason });
    }
  }
}

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

const stateOf = (saga: SagaInstance): SagaState<unknown> => ({
  status: saga.status,
  data: saga.data,
  steps: saga.steps,
  awaiting: saga.awaiting ?? null,
  failureReason: saga.failureReason ?? null,
  deadlineAt: saga.deadlineAt?.toISOString() ?? null,
});
