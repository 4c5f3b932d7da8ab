import type { EntityManager } from '@mikro-orm/postgresql';
import type { Envelope } from '../contracts/envelope.js';
import { sql } from '../database/sql.js';

/**
 * The transactional outbox: messages are written in the same transaction as the state change that
 * causes them, and published by the relay after commit (at once by the process that committed them, or
 * by the relay's poll if that process died first). A crash between commit and publish delays a
 * message; it never loses one, and never sends one for state that did not commit. A row may ask to wait
 * (`not_before`): a durable timer for delayed re-sends. The same message id may appear in several rows
 * (a command re-sent after a timeout keeps its id so the participant can dedupe it).
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

/** A message as written: its row id is what the relay marks published. */
export interface OutboxRow extends OutboxMessage {
  id: string;
}

export class Outbox {
  readonly table: string;

  constructor(schema: string) {
    this.table = `"${schema}"."outbox"`;
  }

  /** Adds messages inside the caller's transaction; hand the rows to the relay once it has committed. */
  async add(em: EntityManager, messages: OutboxMessage[]): Promise<OutboxRow[]> {
    if (messages.length === 0) return [];
    const values = messages.map(() => '(?, ?, ?, ?, ?)').join(', ');
    const rows = await sql<{ id: string }>(
      em,
      `insert into ${this.table} (message_id, exchange, routing_key, envelope, not_before) values ${values} returning id`,
      messages.flatMap((message) => [
        message.envelope.messageId,
        message.exchange,
        message.routingKey,
        JSON.stringify(message.envelope),
        message.notBefore ?? null,
      ]),
    );
    return messages.map((message, index) => ({ ...message, id: String(rows[index].id) }));
  }
}
