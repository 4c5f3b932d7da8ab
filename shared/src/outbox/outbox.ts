import type { Envelope } from '../contracts/envelope.js';

/**
 * The transactional outbox: messages are written in the same transaction as the state change that
 * causes them, and published by the relay after commit (at once by the process that committed them, or
 * by the relay's poll if that process died first). A crash between commit and publish delays a
 * message; it never loses one, and never sends one for state that did not commit. A row may ask to wait
 * (`not_before`): a durable timer for delayed re-sends. The same message id may appear in several rows
 * (a command re-sent after a timeout keeps its id so the participant can dedupe it).
 *
 * This is the table as first created, and the migrations that did so must keep creating it this way; the
 * orchestrator's Migration0005 has since dropped `published_at` (the relay deletes a row once published).
 */
export const outboxTableSql = (schema: string) => `
create table if not exists "${schema}"."outbox" (
  "id" bigserial primary key,
  "message_id" uuid not null,
  "exchange" text not null,
  "routing_key" text not null,
  "envelope" jsonb not null,
  "created_at" timestamptz not null default now(),
  "not_before" timestamptz,
  "published_at" timestamptz
);
create index if not exists "outbox_unpublished_idx" on "${schema}"."outbox" ("id") where "published_at" is null;`;

export interface OutboxMessage {
  exchange: string;
  routingKey: string;
  envelope: Envelope;
  /** A durable delay: the relay publishes the message no earlier than this. */
  notBefore?: Date;
}

/** A message as written: its row id is what the relay deletes once the message is published. */
export interface OutboxRow extends OutboxMessage {
  id: string;
}

export class Outbox {
  readonly table: string;

  constructor(schema: string) {
    this.table = `"${schema}"."outbox"`;
  }

  /**
   * The CTE (`name`, default `sent`) that adds `messages` in the same statement as the state change that causes them, and
   * only if the `guard` CTE (that change) returned a row. It returns the new rows' ids: pair them with the
   * messages (`withIds`) and hand them to the relay once the statement has committed.
   */
  sentCte(guard: string, messages: OutboxMessage[], name = 'sent'): { cte: string; params: unknown[] } {
    return {
      cte: `${name} as (insert into ${this.table} (message_id, exchange, routing_key, envelope, not_before)
        select v.* from ${guard}, (values ${messages.map(() => '(?::uuid, ?, ?, ?::jsonb, ?::timestamptz)').join(', ')}) as v returning id)`,
      params: messages.flatMap((m) => [m.envelope.messageId, m.exchange, m.routingKey, JSON.stringify(m.envelope), m.notBefore ?? null]),
    };
  }

  /** The rows as written, in the order of the messages (ids are assigned in insertion order). */
  withIds(messages: OutboxMessage[], ids: string[]): OutboxRow[] {
    const sorted = [...ids].sort((a, b) => Number(a) - Number(b));
    return messages.map((message, index) => ({ ...message, id: String(sorted[index]) }));
  }
}
