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
 * read and one write per reply, where the ORM's unit of work took six round trips. Reads for people
 * (order views, the console) keep using the MikroORM entities over the same tables.
 */
export class SagaStore {
  constructor(private readonly outbox: Outbox) {}

  async load(em: EntityManager, sagaId: string, { lock = false } = {}): Promise<SagaRow | null> {
    const rows = await sql<Record<string, unknown>>(em, `${SELECT_SAGA} where id = ?${lock ? ' for update' : ''}`, [sagaId]);
    return rows[0] ? toSaga(rows[0]) : null;
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
    const sql = `with saved as (
      insert into ${SAGA} (id, type, business_key, correlation_id, status, data, steps, awaiting, failure_reason, fault_plan,
        deadline_at, timer_at, version, created_at, updated_at)
      values (?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?::jsonb, ?, ?::jsonb, ?::timestamptz, ?::timestamptz, ?, ?::timestamptz, ?::timestamptz)
      returning id)`;
    return this.run(em, sql, params, write);
  }

  /**
   * Saves a transition of a saga read at `write.saga.version` (then moves that version on); throws
   * SagaVersionConflict if someone else moved the saga meanwhile.
   */
  async update(em: EntityManager, write: SagaWrite): Promise<OutboxRow[]> {
    const s = write.saga;
    const params: unknown[] = [
      s.status, JSON.stringify(s.data), JSON.stringify(s.steps), json(s.awaiting), s.failureReason, s.deadlineAt, s.timerAt, s.updatedAt,
      s.id, s.version,
    ];
    const sql = `with saved as (
      update ${SAGA} set status = ?, data = ?::jsonb, steps = ?::jsonb, awaiting = ?::jsonb, failure_reason = ?,
        deadline_at = ?::timestamptz, timer_at = ?::timestamptz, updated_at = ?::timestamptz, version = version + 1
      where id = ? and version = ? returning id)`;
    const outgoing = await this.run(em, sql, params, write);
    s.version += 1;
    return outgoing;
  }

  /** Only a history line (e.g. a stale reply ignored), without touching the saga. */
  async appendEvent(em: EntityManager, sagaId: string, event: SagaEventRow): Promise<void> {
    await sql(em, `insert into ${EVENTS} (saga_id, at, step, kind, message_id, message_type, outcome, detail) values (?, ?, ?, ?, ?, ?, ?, ?)`, [
      sagaId, ...eventValues(event),
    ]);
  }

  /** Appends the history and outbox inserts (only if the saga row was saved) and runs it all as one statement. */
  private async run(em: EntityManager, savedCte: string, params: unknown[], write: SagaWrite): Promise<OutboxRow[]> {
    const parts = [savedCte];
    if (write.events.length) {
      parts.push(`events as (insert into ${EVENTS} (saga_id, at, step, kind, message_id, message_type, outcome, detail)
        select saved.id, v.* from saved, (values ${write.events.map(() => '(?::timestamptz, ?, ?, ?::uuid, ?, ?, ?)').join(', ')}) as v)`);
      params.push(...write.events.flatMap(eventValues));
    }
    if (write.messages.length) {
      const sent = this.outbox.sentCte('saved', write.messages);
      parts.push(sent.cte);
      params.push(...sent.params);
    }
    const ids = write.messages.length ? `(select coalesce(array_agg(id), '{}') from sent)` : `'{}'::bigint[]`;
    const notify = write.notify ? `, (select pg_notify(?, ?) from saved) as notified` : '';
    if (write.notify) params.push(write.notify.channel, write.notify.payload);
    const rows = await sql<{ saved: number; ids: string[] }>(
      em,
      `${parts.join(', ')} select (select count(*) from saved)::int as saved, ${ids} as ids${notify}`,
      params,
    );
    if (rows[0].saved !== 1) throw new SagaVersionConflict(`saga ${write.saga.id} was changed concurrently`);
    return this.outbox.withIds(write.messages, rows[0].ids);
  }
}

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
