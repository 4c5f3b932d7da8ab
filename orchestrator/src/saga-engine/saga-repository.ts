import {
  type Database,
  type Envelope,
  EXCHANGES,
  HEADERS,
  keepDays,
  type Publisher,
  type Queryable,
  type Retention,
  SAGA_ENDED_CHANNEL,
  SCHEMA_VERSION,
  statement,
  type TraceCarrier,
} from '@sagaflow/shared';
import type { Logger } from 'pino';
import type { Saga, SagaEvent } from './saga.entities.js';
import { type CommandToSend, packState, unpackState } from './saga-state.js';
import { observeCommitted, sagaLogFields, type StepDone } from './saga-telemetry.js';

/**
 * One change of one saga, as the engine decided it: the saga at its new state (its `version` still the one
 * it was read at), what happened (one history row), and the command to publish once it has committed.
 */
export interface SagaChange {
  saga: Saga;
  events: SagaEvent[];
  send: CommandToSend | null;
  /** The message that caused the change (a reply), for the command's causation id. */
  causationId: string;
  /** The saga ended: announce it on commit (the benchmark's closed loop LISTENs). */
  ended: boolean;
  /** When it happened (the history row's time). */
  at: Date;
  /** Only a reply recorded as ignored: the engine re-reads the saga before it believes that. */
  stale?: boolean;
  /** The trace the command continues (the reply's that caused it, else the saga's own); none while tracing is off. */
  trace?: TraceCarrier | null;
  /** Steps whose replies this change applied (their durations are observed once it commits). */
  stepsDone?: StepDone[];
}

/** The saga is not at the version the change was computed from: someone else moved it first. */
export class SagaVersionConflict extends Error {}

const SAGA = '"orchestrator"."saga"';
const HISTORY = '"orchestrator"."saga_history"';
const COLUMNS = 'id, type, business_key, correlation_id, status, state, fault_plan, timer_at, trace_context, version, created_at, updated_at';
/** Sagas a timer can concern (the partial index `saga_active_idx` holds just these). */
const ACTIVE = `status in ('RUNNING', 'COMPENSATING')`;

const LOAD = statement('saga.load', `select ${COLUMNS} from ${SAGA} where id = any($1::uuid[])`);
/** In id order, so that two transactions locking overlapping sets never wait on each other in opposite orders. */
const LOCK = statement('saga.lock', `select ${COLUMNS} from ${SAGA} where id = any($1::uuid[]) order by id for update`);
/** Due timers are read through `saga_timer_idx` (active sagas with a timer), so a tick costs the due rows only; `$1` is the tick's one clock. */
const ANY_DUE = statement('saga.any-due', `select exists (select 1 from ${SAGA} where ${ACTIVE} and timer_at <= $1) as due`);
export const CLAIM_DUE = statement('saga.claim-due', `select ${COLUMNS} from ${SAGA} where ${ACTIVE} and timer_at <= $2 order by timer_at limit $1 for update skip locked`);
/** Sagas running now (admission control's work in hand). */
const ACTIVE_COUNT = statement('saga.active-count', `select count(*)::int as active from ${SAGA} where ${ACTIVE}`);
/** The outbox backlog, for /metrics: due timers not fired yet, and how long the oldest has waited. */
const BACKLOG = statement(
  'saga.backlog',
  `select count(*)::int as rows, coalesce(extract(epoch from now() - min(timer_at)), 0)::float8 as oldest from ${SAGA} where ${ACTIVE} and timer_at <= now()`,
);
/** New sagas, each with its first history row; they travel as one JSON parameter, like SAVE's changes. */
const INSERT = statement(
  'saga.insert',
  `with new as (
     select * from jsonb_to_recordset($1::jsonb)
       as new(id uuid, type text, business_key text, correlation_id text, status text, state jsonb, fault_plan jsonb, timer_at timestamptz, trace_context jsonb, created_at timestamptz, events jsonb)),
   saved as (
     insert into ${SAGA} (${COLUMNS})
     select id, type, business_key, correlation_id, status, state, fault_plan, timer_at, trace_context, 1, created_at, created_at from new returning id)
   insert into ${HISTORY} (saga_id, seq, at, events) select new.id, 1, new.created_at, new.events from new join saved using (id)`,
);
/**
 * Every change of a batch in one statement: each saga row only if its version still matches (then the
 * version moves on), and its history row and end notice only if it was. The changes travel as one JSON
 * parameter, so the text is fixed and prepared once.
 */
const SAVE = statement(
  'saga.save',
  `with change as (
     select * from jsonb_to_recordset($1::jsonb)
       as change(id uuid, version int, status text, state jsonb, timer_at timestamptz, updated_at timestamptz, at timestamptz, events jsonb, ended text)),
   saved as (
     update ${SAGA} as saga set status = change.status, state = change.state, timer_at = change.timer_at,
       updated_at = change.updated_at, version = saga.version + 1
     from change where saga.id = change.id and saga.version = change.version
     returning saga.id, saga.version),
   history as (
     insert into ${HISTORY} (saga_id, seq, at, events)
     select saved.id, saved.version, change.at, change.events from saved join change using (id) where change.events is not null),
   notified as (
     select pg_notify('${SAGA_ENDED_CHANNEL}', change.ended) from saved join change using (id) where change.ended is not null)
   select array(select id from saved)::text[] as saved, (select count(*) from notified) as notified`,
);

/**
 * The history of a saga that ended for good (COMPLETED, COMPENSATED) goes after SAGA_HISTORY_RETENTION_DAYS;
 * the saga row, the order's record, stays. A FAILED or COMPENSATION_FAILED saga waits for a person: kept.
 */
export const historyRetention = (days: number): Retention => ({
  what: 'saga history',
  table: HISTORY,
  column: 'at',
  keepSeconds: keepDays(days),
  where: `exists (select 1 from ${SAGA} s where s.id = t.saga_id and s.status in ('COMPLETED', 'COMPENSATED'))`,
});

/**
 * How long a committed command may go unconfirmed before the timer poll sends it again: at least this, rounded
 * up to a whole number of these, so that the transitions of a saga that moves along quickly write the same
 * timer and stay HOT updates (the timer is indexed).
 */
const PUBLISH_GRACE_MS = 5_000;
/** Message ids this process saw confirmed, so the poll does not send them again; the oldest go first. */
const REMEMBERED_PUBLISHES = 20_000;

/**
 * The engine's persistence, and the one place that publishes its commands. A saga's row is its own
 * outbox: a change that sends a command commits the saga (awaiting that command) with its timer at most
 * PUBLISH_GRACE_MS away, and the command is published right after the commit. Should the process die
 * first, or the broker refuse, the timer finds the saga still awaiting a command nobody confirmed, and
 * sends it again from the saga's state (same message id; the participant dedupes). So no command is lost
 * between commit and publish, none is sent for state that did not commit, and no outbox row is written.
 */
export class SagaRepository {
  private readonly published = new Set<string>();
  /** Message ids being published now: the timer poll leaves them to that publish. */
  private readonly inFlight = new Set<string>();
  /** Sagas started on their own and not yet inserted: those of one turn of the event loop share a statement. */
  private starting: { change: SagaChange; now: Date; settle: (error?: Error) => void }[] = [];

  constructor(
    private readonly db: Database,
    private readonly publisher: Publisher,
    private readonly logger: Logger,
  ) {}

  async loadMany(sagaIds: string[]): Promise<Map<string, Saga>> {
    const rows = await this.db.query<Row>(LOAD, [sagaIds]);
    return new Map(rows.map(toSaga).map((saga) => [saga.id, saga]));
  }

  /** Sagas whose timer is due and not fired yet, and the oldest one's wait in seconds (one read, on a scrape). */
  async outboxBacklog(): Promise<{ rows: number; oldestAgeSeconds: number }> {
    const [row] = await this.db.query<{ rows: number; oldest: number }>(BACKLOG, []);
    return { rows: row.rows, oldestAgeSeconds: row.oldest };
  }

  /** How many sagas are running (or compensating) now. */
  async activeCount(): Promise<number> {
    const [row] = await this.db.query<{ active: number }>(ACTIVE_COUNT, []);
    return row.active;
  }

  /** Whether any saga's timer is due at `now`: one cheap read, so an idle poll opens no transaction. */
  async anyTimerDue(now: Date): Promise<boolean> {
    const [row] = await this.db.query<{ due: boolean }>(ANY_DUE, [now]);
    return row.due;
  }

  /**
   * Saves changes of several sagas as one statement (atomic on its own: no transaction around it), then
   * publishes their commands; per change, whether it was saved (else it conflicted). It waits for the
   * broker's confirms, unless the broker cannot take publishes now (away, or blocked by an alarm): then the
   * replies go on being consumed, and the timer poll sends the commands once it can.
   */
  save(changes: SagaChange[]): Promise<boolean[]> {
    return this.alone((unit) => unit.save(changes), this.canPublish());
  }

  /**
   * Inserts a new saga; its first command is published once it has committed, without waiting for the
   * broker: the row is the outbox, and the timer poll sends what the broker does not confirm. Sagas started
   * in the same turn of the event loop (concurrent requests) are inserted by one statement, one commit; if
   * it fails, each is tried alone, so that one bad saga fails only its own request.
   */
  insert(change: SagaChange, now: Date): Promise<void> {
    return new Promise((resolve, reject) => {
      this.starting.push({ change, now, settle: (error) => (error ? reject(error) : resolve()) });
      if (this.starting.length === 1) setImmediate(() => void this.insertStarting());
    });
  }

  private async insertStarting(): Promise<void> {
    const batch = this.starting;
    this.starting = [];
    try {
      await this.alone((unit) => unit.insertAll(batch), false);
      for (const { settle } of batch) settle();
    } catch (error) {
      if (batch.length === 1) return batch[0].settle(error as Error);
      await Promise.all(batch.map((one) => this.alone((unit) => unit.insertAll([one]), false).then(() => one.settle(), (alone: Error) => one.settle(alone))));
    }
  }

  /**
   * Runs `work` as one transaction. What it saves commits together; the commands the changes send are
   * published once it has committed: before this resolves, unless `awaitPublish` is false (a request
   * answered once its saga is stored, whatever the broker does).
   */
  async transaction<T>(work: (unit: SagaUnitOfWork) => Promise<T>, awaitPublish = true): Promise<T> {
    let unit!: SagaUnitOfWork;
    const result = await this.db.transaction(async (tx) => work((unit = new SagaUnitOfWork(this, tx))));
    await this.afterCommit(unit, awaitPublish);
    return result;
  }

  /** One statement on its own (it commits as it runs), then the commands it sends (see `transaction`). */
  private async alone<T>(work: (unit: SagaUnitOfWork) => Promise<T>, awaitPublish = true): Promise<T> {
    const unit = new SagaUnitOfWork(this, this.db);
    const result = await work(unit);
    await this.afterCommit(unit, awaitPublish);
    return result;
  }

  private async afterCommit(unit: SagaUnitOfWork, awaitPublish: boolean): Promise<void> {
    const published = this.publishAll(unit.committed);
    if (awaitPublish) return published;
    published.catch((error: Error) => this.logger.warn({ err: error.message }, 'publish after commit failed; the timer poll will send it'));
  }

  /** When a change's saga must next be looked at: its own timer, or sooner if a command is to be confirmed. */
  timerOf(change: SagaChange, now: Date): Date | null {
    const timer = change.saga.timerAt ?? null;
    if (!change.send || change.send.delayMs > 0) return timer;
    const grace = new Date(Math.ceil((now.getTime() + PUBLISH_GRACE_MS) / PUBLISH_GRACE_MS) * PUBLISH_GRACE_MS);
    return timer && timer < grace ? timer : grace;
  }

  /** Whether this process saw the broker confirm this command. */
  wasPublished(messageId: string): boolean {
    return this.published.has(messageId);
  }

  /** Whether this process is publishing this command right now (awaiting the broker's confirm). */
  publishing(messageId: string): boolean {
    return this.inFlight.has(messageId);
  }

  /** Whether the broker can take a publish now (connected, not blocked by an alarm). */
  canPublish(): boolean {
    return this.publisher.ready();
  }

  /** Publishes a command (confirmed). */
  async publish(saga: Saga, command: CommandToSend, causationId: string): Promise<void> {
    this.inFlight.add(command.messageId);
    try {
      await this.publisher.publish(EXCHANGES.commands, command.contract.type, envelopeOf(saga, command, causationId, saga.traceContext));
      this.remember(command.messageId);
    } finally {
      this.inFlight.delete(command.messageId);
    }
  }

  private remember(messageId: string): void {
    this.published.add(messageId);
    if (this.published.size > REMEMBERED_PUBLISHES) this.published.delete(this.published.values().next().value!);
  }

  /**
   * After commit: what the changes did is observed (metrics, step and saga spans), then the commands due now
   * go out together (bundled if on). One that fails is left to the timer poll.
   */
  private async publishAll(changes: SagaChange[]): Promise<void> {
    observeCommitted(changes);
    const due = changes.filter((change) => change.send && change.send.delayMs === 0);
    if (due.length === 0) return;
    for (const { send } of due) this.inFlight.add(send!.messageId);
    const outcomes = await this.publisher.publishAll(
      due.map(({ saga, send, causationId, trace }) => ({ exchange: EXCHANGES.commands, routingKey: send!.contract.type, envelope: envelopeOf(saga, send!, causationId, trace) })),
    );
    outcomes.forEach((error, index) => {
      const { saga, send } = due[index];
      this.inFlight.delete(send!.messageId);
      if (!error) this.remember(send!.messageId);
      else this.logger.warn({ ...sagaLogFields(saga), messageId: send!.messageId, err: error.message }, 'publish failed; the timer poll will send it again');
    });
  }
}

/** A transaction of the repository: reads and locks sagas, saves changes, and remembers what to publish after commit. */
export class SagaUnitOfWork {
  /** Changes saved in this transaction, whose commands go out once it commits. */
  readonly committed: SagaChange[] = [];

  constructor(
    private readonly repository: SagaRepository,
    /** The transaction, for statements of the caller's that must commit with the sagas (e.g. an idempotency key). */
    readonly tx: Queryable,
  ) {}

  /** Reads sagas and locks them until commit (those that exist). */
  async lock(sagaIds: string[]): Promise<Saga[]> {
    return (await this.tx.query<Row>(LOCK, [sagaIds])).map(toSaga);
  }

  /** Claims sagas whose timer is due at `now` (FOR UPDATE SKIP LOCKED: instances share them). */
  async claimDueTimers(limit: number, now: Date): Promise<Saga[]> {
    return (await this.tx.query<Row>(CLAIM_DUE, [limit, now])).map(toSaga);
  }

  /** Inserts a new saga with its first history row; its first command goes out after commit. */
  insert(change: SagaChange, now: Date): Promise<void> {
    return this.insertAll([{ change, now }]);
  }

  /** Inserts new sagas (one statement); their first commands go out after commit. */
  async insertAll(sagas: { change: SagaChange; now: Date }[]): Promise<void> {
    const rows = sagas.map(({ change, now }) => {
      const { saga } = change;
      saga.timerAt = this.repository.timerOf(change, now);
      return {
        id: saga.id,
        type: saga.type,
        business_key: saga.businessKey,
        correlation_id: saga.correlationId,
        status: saga.status,
        state: packState(saga.state),
        fault_plan: saga.faultPlan,
        timer_at: saga.timerAt,
        trace_context: saga.traceContext,
        created_at: saga.createdAt,
        events: change.events,
      };
    });
    await this.tx.query(INSERT, [JSON.stringify(rows)]);
    for (const { change } of sagas) this.committed.push(change);
  }

  /** Saves changes (each against the version it was read at); per change, whether it was saved. */
  async save(changes: SagaChange[]): Promise<boolean[]> {
    if (changes.length === 0) return [];
    const now = new Date();
    const timers = changes.map((change) => this.repository.timerOf(change, now));
    const rows = changes.map(({ saga, at, events, ended }, index) => ({
      id: saga.id,
      version: saga.version,
      status: saga.status,
      state: packState(saga.state),
      timer_at: timers[index],
      updated_at: saga.updatedAt,
      at,
      events: events.length ? events : null,
      ended: ended ? JSON.stringify({ sagaId: saga.id, type: saga.type, businessKey: saga.businessKey, status: saga.status }) : null,
    }));
    const [{ saved }] = await this.tx.query<{ saved: string[] }>(SAVE, [JSON.stringify(rows)]);
    const savedIds = new Set(saved);
    return changes.map((change, index) => {
      if (!savedIds.has(change.saga.id)) return false;
      change.saga.version += 1;
      change.saga.timerAt = timers[index];
      this.committed.push(change);
      return true;
    });
  }

  /** Publishes a command now, inside the transaction: for commands whose saga state committed earlier. */
  publish(saga: Saga, command: CommandToSend): Promise<void> {
    return this.repository.publish(saga, command, '');
  }

  wasPublished(messageId: string): boolean {
    return this.repository.wasPublished(messageId);
  }
}

/** The command as it travels: its envelope, with the step's retry policy and limits, the send count, any fault plan, and the trace it continues. */
function envelopeOf(saga: Saga, command: CommandToSend, causationId: string, trace: TraceCarrier | null | undefined): Envelope {
  const fault = saga.faultPlan?.[command.contract.type];
  return {
    messageId: command.messageId,
    type: command.contract.type,
    sagaId: saga.id,
    correlationId: saga.correlationId,
    causationId,
    schemaVersion: SCHEMA_VERSION,
    payload: command.payload,
    headers: {
      [HEADERS.retryPolicy]: JSON.stringify(command.retry),
      [HEADERS.attempt]: 1,
      [HEADERS.resend]: command.resend,
      [HEADERS.workTimeout]: command.workTimeoutMs,
      ...(command.expiresAt ? { [HEADERS.expiresAt]: Date.parse(command.expiresAt) } : {}),
      ...(fault ? { [HEADERS.faultPlan]: JSON.stringify(fault) } : {}),
      ...trace,
    },
  };
}

type Row = Record<string, any>;

function toSaga(row: Row): Saga {
  return {
    id: row.id,
    type: row.type,
    businessKey: row.business_key,
    correlationId: row.correlation_id,
    status: row.status,
    state: unpackState(row.state),
    faultPlan: row.fault_plan ?? null,
    timerAt: row.timer_at,
    traceContext: row.trace_context ?? null,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
