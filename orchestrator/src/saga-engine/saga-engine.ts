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
import { SagaCache } from './saga-cache.js';
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
 * commit, so a reply can never overtake the state change that sent its command. Replies come in
 * batches (the replies in hand): one statement saves all their sagas' transitions. The engine remembers
 * each saga as it last saved it, so a reply usually needs no read; the version check keeps that safe.
 */
export class SagaEngine {
  private readonly definitions = new Map<string, SagaDefinition<any>>();
  private readonly store: SagaStore;
  private readonly cache = new SagaCache();

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
    this.cache.keep(saga);
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
      this.cache.forget(sagaId);
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
    if (!(await this.store.anyTimerDue(this.orm.em.fork()))) return 0;
    const outgoing: OutboxRow[] = [];
    const fired = await this.orm.em.fork().transactional(async (em) => {
      let moved = 0;
      for (const saga of await this.store.claimDueTimers(em, batchSize)) {
        this.cache.forget(saga.id);
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
    const [error] = await this.handleReplies([reply]);
    if (error) throw error;
  }

  /**
   * Takes the replies in hand together: one read for the sagas not remembered from their last save here,
   * one statement for every transition (replies to one saga applied in turn), one commit; then the
   * commands they caused are published.
   * Returns, per reply, nothing (done: ack it) or why it failed. A saga someone else moved meanwhile (a
   * second orchestrator) is read and decided again.
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
      const { outgoing, conflicted } = await this.applyReplies(this.orm.em.fork(), pending, outcomes);
      // The replies are acked once the next commands are confirmed (or left to the outbox poll).
      await this.afterCommit(outgoing);
      pending = conflicted;
      if (attempt >= MAX_CONFLICT_RETRIES) {
        for (const { index, reply } of pending) outcomes[index] = new SagaVersionConflict(`saga ${reply.sagaId} kept changing concurrently`);
        break;
      }
    }
    return outcomes;
  }

  /**
   * Decides every reply against its saga (as last saved here, else as read now) and saves all
   * transitions at once; returns the replies to decide again on a fresh read: their saga moved
   * meanwhile, or a remembered state called them stale (only a fresh read may say that).
   */
  private async applyReplies(em: EntityManager, pending: ReplyInHand[], outcomes: (Error | undefined)[]): Promise<{ outgoing: OutboxRow[]; conflicted: ReplyInHand[] }> {
    const { sagas, remembered } = await this.sagasFor(em, pending);
    const bySaga = new Map<string, { write: SagaWrite; replies: ReplyInHand[]; logs: (() => void)[] }>();
    const now = new Date();
    for (const item of pending) {
      const saga = sagas.get(item.reply.sagaId);
      try {
        if (!saga) throw new PermanentError(`no saga ${item.reply.sagaId}`);
        const { write, log } = this.decide(saga, item, now);
        const same = bySaga.get(saga.id);
        if (!same) bySaga.set(saga.id, { write, replies: [item], logs: [log] });
        else {
          same.write = merged(same.write, write);
          same.replies.push(item);
          same.logs.push(log);
        }
      } catch (error) {
        outcomes[item.index] = error as Error;
      }
    }
    const conflicted: ReplyInHand[] = [];
    const writes = [...bySaga.values()].filter(({ write, replies }) => {
      if (!(write.historyOnly && remembered.has(write.saga.id))) return true;
      conflicted.push(...replies);
      return false;
    });
    const results = writes.length ? await this.store.saveAll(em, writes.map(({ write }) => write)) : [];
    const outgoing: OutboxRow[] = [];
    results.forEach((result, i) => {
      if (!result.saved) return conflicted.push(...writes[i].replies);
      if (!writes[i].write.historyOnly) this.cache.keep(writes[i].write.saga);
      outgoing.push(...result.outgoing);
      writes[i].logs.forEach((log) => log());
    });
    return { outgoing, conflicted };
  }

  /** The replies' sagas: as last saved here where remembered (those ids in `remembered`), the others read in one query. */
  private async sagasFor(em: EntityManager, pending: ReplyInHand[]): Promise<{ sagas: Map<string, SagaRow>; remembered: Set<string> }> {
    const sagaIds = [...new Set(pending.map(({ reply }) => reply.sagaId))];
    const sagas = new Map<string, SagaRow>();
    for (const sagaId of sagaIds) {
      const saga = this.cache.take(sagaId);
      if (saga) sagas.set(sagaId, saga);
    }
    const remembered = new Set(sagas.keys());
    const toRead = sagaIds.filter((sagaId) => !remembered.has(sagaId));
    if (toRead.length) for (const [sagaId, saga] of await this.store.loadMany(em, toRead)) sagas.set(sagaId, saga);
    return { sagas, remembered };
  }

  /** What a reply does to its saga (moved to its next state here, not saved yet), and the log line for once it is saved. */
  private decide(saga: SagaRow, { reply, outcome }: ReplyInHand, now: Date): { write: SagaWrite; log: () => void } {
    const log = this.logger.child({ sagaId: saga.id, messageId: reply.messageId, type: reply.type });
    const awaiting = saga.awaiting;
    const about = { messageId: reply.messageId, messageType: reply.type, outcome: outcome.outcome };
    if (!awaiting || awaiting.messageId !== reply.causationId || awaiting.commandType !== outcome.commandType) {
      // Late, duplicated or out-of-order: the saga has moved on. Recorded, not applied.
      const detail = awaiting ? `awaiting ${awaiting.commandType} ${awaiting.messageId}` : `saga is ${saga.status}`;
      const ignored: SagaEventRow = { ...NO_EVENT_DETAIL, ...about, at: now, kind: 'reply-ignored', detail };
      return { write: { saga, events: [ignored], messages: [], historyOnly: true }, log: () => log.info({ detail }, 'stale reply ignored') };
    }
    const definition = this.definitionOf(saga);
    const transition = applyReply(definition, stateOf(saga), { ...outcome, ...attemptsOf(reply) }, now, newMessageId());
    const failure = outcome.outcome === 'failed' ? (outcome.payload as FailureReply) : null;
    const applied: SagaEventRow = { ...about, at: now, step: awaiting.step, kind: 'reply-applied', detail: failure ? `${failure.code}: ${failure.reason}` : null };
    const write = this.transit(saga, definition, transition, now, reply.messageId, [applied]);
    const { status, businessKey, failureReason } = saga;
    return {
      write,
      log: () => {
        log.debug({ step: awaiting.step, outcome: outcome.outcome, status }, 'reply applied');
        if (FINAL_SAGA_STATUSES.includes(status)) log.info({ status, businessKey, failureReason }, 'saga ended');
      },
    };
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
    return this.store.update(em, this.transit(saga, definition, transition, now, causationId, first));
  }

  /** Moves a saga (in memory) to the transition's state; returns what saving it writes. */
  private transit(saga: SagaRow, definition: SagaDefinition<any>, transition: Transition<unknown>, now: Date, causationId: string, first: SagaEventRow[]): SagaWrite {
    Object.assign(saga, persisted(definition, transition.state), { updatedAt: now });
    return this.writeOf(saga, transition, now, causationId, first);
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

/** Two transitions of one saga in one batch as one write: the later state, both histories, both commands. */
function merged(first: SagaWrite, then: SagaWrite): SagaWrite {
  return {
    saga: then.saga,
    events: [...first.events, ...then.events],
    messages: [...first.messages, ...then.messages],
    notify: then.notify ?? first.notify,
    historyOnly: first.historyOnly && then.historyOnly,
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
