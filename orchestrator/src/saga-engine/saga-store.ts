import type { EntityManager } from '@mikro-orm/postgresql';
import { type FaultPlan, type Outbox, type OutboxMessage, type OutboxRow, type SagaStatus, sql } from '@sagaflow/shared';
import type { SagaEventKind } from './saga.entities.js';
import type { Awaiting, StepState } from './saga-state.js';

/** A saga row as the engine reads and writes it (the `SagaInstance` entity's fields). */
export interface SagaRow {
  id: string;
  type: string;
  businessKey: string;
  correlationId: string;
  status: SagaStatus;
  data: Record<string, unknown>;
  steps: StepState[];
  awaiting: Awaiting | null;
  failureReason: string | null;
  faultPlan: FaultPlan | null;
  deadlineAt: Date | null;
  timerAt: Date | null;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

/** One line of a saga's history. */
export interface SagaEventRow {
  at: Date;
  step: string | null;
  kind: SagaEventKind;
  messageId: string | null;
  messageType: string | null;
  outcome: string | null;
  detail: string | null;
}

/** What one transition writes: the saga's new state, its history lines, its outgoing commands. */
export interface SagaWrite {
  saga: SagaRow;
  events: SagaEventRow[];
  messages: OutboxMessage[];
  /** Announce on this NOTIFY channel that the saga ended (delivered on commit). */
  notify?: { channel: string; payload: string };
  /** Only history lines (e.g. stale replies recorded): the saga row is left as it is, so no version check. */
  historyOnly?: boolean;
}

/** How saving one saga's transition went: saved (else someone moved the saga first, nothing was written) and the commands written. */
export interface SaveResult {
  saved: boolean;
  outgoing: OutboxRow[];
}

/** The saga is not at the version the transition was computed from: someone else moved it first. */
export class SagaVersionConflict extends Error {}

const SAGA = '"orchestrator"."saga"';
const EVENTS = '"orchestrator"."saga_event"';
const SELECT_SAGA = `select id, type, business_key, correlation_id, status, data, steps, awaiting, failure_reason, fault_plan,
  deadline_at, timer_at, version, created_at, updated_at from ${SAGA}`;

/**
 * The engine's persistence: each transition is ONE SQL statement (saga row with its version check,
 * history and outbox rows, as data-modifying CTEs), atomic on its own. Replies are the hot path: one
 * read and one write per batch of replies (however many sagas), where the ORM's unit of work took six
 * round trips per reply. Reads for people
 * (order views, the console) keep using the MikroORM entities over the same tables.
 */
export class SagaStore {
  constructor(private readonly outbox: Outbox) {}

  async load(em: EntityManager, sagaId: string, { lock = false } = {}): Promise<SagaRow | null> {
    const rows = await sql<Record<string, unknown>>(em, `${SELECT_SAGA} where id = ?${lock ? ' for update' : ''}`, [sagaId]);
    return rows[0] ? toSaga(rows[0]) : null;
  }

  /** Several sagas in one read, by id (the ones that exist). */
  async loadMany(em: EntityManager, sagaIds: string[]): Promise<Map<string, SagaRow>> {
    const rows = await sql<Record<string, unknown>>(em, `${SELECT_SAGA} where id = any(?::uuid[])`, [sagaIds]);
    return new Map(rows.map(toSaga).map((saga) => [saga.id, saga]));
  }

  /** Whether any saga's timer is due: one cheap read, so an idle poll opens no transaction. */
  async anyTimerDue(em: EntityManager): Promise<boolean> {
    const [row] = await sql<{ due: boolean }>(em, `select exists (select 1 from ${SAGA} where timer_at <= now()) as due`);
    return row.due;
  }

  /** Claims sagas whose timer is due (FOR UPDATE SKIP LOCKED: instances share them); call inside a transaction. */
  async claimDueTimers(em: EntityManager, limit: number): Promise<SagaRow[]> {
    const rows = await sql<Record<string, unknown>>(em, `${SELECT_SAGA} where timer_at <= now() order by timer_at limit ? for update skip locked`, [limit]);
    return rows.map(toSaga);
  }

  /** Inserts a new saga with its history and first command. */
  async insert(em: EntityManager, write: SagaWrite): Promise<OutboxRow[]> {
    const s = write.saga;
    const params: unknown[] = [
      s.id, s.type, s.businessKey, s.correlationId, s.status, JSON.stringify(s.data), JSON.stringify(s.steps), json(s.awaiting),
      s.failureReason, json(s.faultPlan), s.deadlineAt, s.timerAt, s.version, s.createdAt, s.updatedAt,
    ];
    const saved = `saved as (
      insert into ${SAGA} (id, type, business_key, correlation_id, status, data, steps, awaiting, failure_reason, fault_plan,
        deadline_at, timer_at, version, created_at, updated_at)
      values (?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?::jsonb, ?, ?::jsonb, ?::timestamptz, ?::timestamptz, ?, ?::timestamptz, ?::timestamptz)
      returning id)`;
    return this.run(em, saved, params, write);
  }

  /**
   * Saves a transition of a saga read at `write.saga.version` (then moves that version on); throws
   * SagaVersionConflict if someone else moved the saga meanwhile.
   */
  async update(em: EntityManager, write: SagaWrite): Promise<OutboxRow[]> {
    const [result] = await this.saveAll(em, [write]);
    if (!result.saved) throw new SagaVersionConflict(`saga ${write.saga.id} was changed concurrently`);
    return result.outgoing;
  }

  /**
   * Saves the transitions of several sagas (each read at `saga.version`) as ONE statement: one round
   * trip and one commit for a whole batch of replies. Per saga, the row, its history and its commands are
   * written only if its version still matches (then the version moves on); a saga someone else moved
   * meanwhile comes back `saved: false` with nothing written, to be read and decided again.
   */
  async saveAll(em: EntityManager, writes: SagaWrite[]): Promise<SaveResult[]> {
    const ctes: string[] = [];
    const columns: string[] = [];
    const params: unknown[] = [];
    const columnParams: unknown[] = [];
    writes.forEach((write, i) => {
      const s = write.saga;
      if (write.historyOnly) {
        ctes.push(`h${i} as (${insertEvents(write.events.length)})`);
        params.push(...write.events.flatMap((event) => [s.id, ...eventValues(event)]));
        columns.push(`1 as saved${i}`, `'{}'::bigint[] as ids${i}`);
        return;
      }
      ctes.push(`saved${i} as (update ${SAGA} set status = ?, data = ?::jsonb, steps = ?::jsonb, awaiting = ?::jsonb, failure_reason = ?,
        deadline_at = ?::timestamptz, timer_at = ?::timestamptz, updated_at = ?::timestamptz, version = version + 1
        where id = ? and version = ? returning id)`);
      params.push(s.status, JSON.stringify(s.data), JSON.stringify(s.steps), json(s.awaiting), s.failureReason, s.deadlineAt, s.timerAt, s.updatedAt, s.id, s.version);
      this.appendWrites(`saved${i}`, String(i), write, { ctes, params }, { columns, params: columnParams });
    });
    const rows = await sql<Record<string, unknown>>(em, `with ${ctes.join(', ')} select ${columns.join(', ')}`, [...params, ...columnParams]);
    return writes.map((write, i) => {
      const saved = Number(rows[0][`saved${i}`]) === 1;
      if (saved && !write.historyOnly) write.saga.version += 1;
      return { saved, outgoing: saved ? this.outbox.withIds(write.messages, rows[0][`ids${i}`] as string[]) : [] };
    });
  }

  /** Only a history line (e.g. a stale reply ignored), without touching the saga. */
  async appendEvent(em: EntityManager, sagaId: string, event: SagaEventRow): Promise<void> {
    await sql(em, insertEvents(1), [sagaId, ...eventValues(event)]);
  }

  /** Inserts a saga (`saved` CTE) with its history and outbox rows, as one statement. */
  private async run(em: EntityManager, savedCte: string, params: unknown[], write: SagaWrite): Promise<OutboxRow[]> {
    const ctes = [savedCte];
    const columns: string[] = [];
    const columnParams: unknown[] = [];
    this.appendWrites('saved', '', write, { ctes, params }, { columns, params: columnParams });
    const rows = await sql<Record<string, unknown>>(em, `with ${ctes.join(', ')} select ${columns.join(', ')}`, [...params, ...columnParams]);
    if (Number(rows[0].saved) !== 1) throw new SagaVersionConflict(`saga ${write.saga.id} was changed concurrently`);
    return this.outbox.withIds(write.messages, rows[0].ids as string[]);
  }

  /**
   * Adds what goes with a saga row (`guard` CTE): its history and outbox rows, written only if the row
   * was, and the result columns: whether it was (`saved<suffix>`) and the outbox ids (`ids<suffix>`).
   * The statement's text is all CTEs, then the columns, so each part keeps its parameters in its own list.
   */
  private appendWrites(
    guard: string,
    suffix: string,
    write: SagaWrite,
    withs: { ctes: string[]; params: unknown[] },
    select: { columns: string[]; params: unknown[] },
  ): void {
    if (write.events.length) {
      withs.ctes.push(`events${suffix} as (insert into ${EVENTS} (saga_id, at, step, kind, message_id, message_type, outcome, detail)
        select ${guard}.id, v.* from ${guard}, (values ${write.events.map(() => '(?::timestamptz, ?, ?, ?::uuid, ?, ?, ?)').join(', ')}) as v)`);
      withs.params.push(...write.events.flatMap(eventValues));
    }
    select.columns.push(`(select count(*) from ${guard})::int as saved${suffix}`);
    if (write.messages.length) {
      const sent = this.outbox.sentCte(guard, write.messages, `sent${suffix}`);
      withs.ctes.push(sent.cte);
      withs.params.push(...sent.params);
      select.columns.push(`(select coalesce(array_agg(id), '{}') from sent${suffix}) as ids${suffix}`);
    } else {
      select.columns.push(`'{}'::bigint[] as ids${suffix}`);
    }
    if (write.notify) {
      select.columns.push(`(select pg_notify(?, ?) from ${guard}) as notified${suffix}`);
      select.params.push(write.notify.channel, write.notify.payload);
    }
  }
}

/** Events as a plain insert, not tied to a saga row's update: `?` saga id and the event's values, per event. */
const insertEvents = (count: number) =>
  `insert into ${EVENTS} (saga_id, at, step, kind, message_id, message_type, outcome, detail) values ${Array.from({ length: count }, () => '(?, ?::timestamptz, ?, ?, ?::uuid, ?, ?, ?)').join(', ')}`;

const json = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(value));
const eventValues = (e: SagaEventRow) => [e.at, e.step, e.kind, e.messageId, e.messageType, e.outcome, e.detail];

function toSaga(row: Record<string, any>): SagaRow {
  return {
    id: row.id,
    type: row.type,
    businessKey: row.business_key,
    correlationId: row.correlation_id,
    status: row.status,
    data: row.data,
    steps: row.steps,
    awaiting: row.awaiting ?? null,
    failureReason: row.failure_reason ?? null,
    faultPlan: row.fault_plan ?? null,
    deadlineAt: row.deadline_at ? new Date(row.deadline_at) : null,
    timerAt: row.timer_at ? new Date(row.timer_at) : null,
    version: Number(row.version),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}
