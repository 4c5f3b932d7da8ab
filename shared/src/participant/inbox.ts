import { Migration } from '@mikro-orm/migrations';
import { createHash } from 'node:crypto';
import { canonicalJson } from '../contracts/canonical-json.js';
import type { Envelope } from '../contracts/envelope.js';
import { type Database, statement, type Statement, type Tx } from '../database/database.js';
import { keepDays, type Retention } from '../runtime/retention.js';

/**
 * The inbox: one row per command a service has processed, written once, in the same transaction as the
 * command's effects, with the reply it produced. A redelivered or duplicated command finds its row,
 * causes nothing new and gets the very same reply (same message id) again.
 */
export const inboxTableSql = (schema: string) => `
create table if not exists "${schema}"."inbox" (
  "message_id" uuid primary key,
  "message_type" text not null,
  "saga_id" uuid not null,
  "reply" jsonb,
  "processed_at" timestamptz not null default now()
);`;

/**
 * The inbox remembers a hash of each command's body (its type and payload, keys in a fixed order), so that
 * a message id used again for a different command is told apart from a redelivery: see `bodyHashOf`. A
 * BRIN index on the time keeps the retention sweep cheap without slowing the insert down.
 */
export function inboxHashMigration(schema: string) {
  return class InboxHashes extends Migration {
    override async up(): Promise<void> {
      this.addSql(`alter table "${schema}"."inbox" add column "body_hash" text;`);
      this.addSql(`create index "inbox_processed_at_brin" on "${schema}"."inbox" using brin ("processed_at");`);
    }
  };
}

/** How long the inbox keeps a processed command (INBOX_RETENTION_DAYS), for the retention sweeper. */
export const inboxRetention = (schema: string, days: number): Retention => ({ what: 'inbox', table: `"${schema}"."inbox"`, column: 'processed_at', keepSeconds: keepDays(days) });

/** A command's body as the inbox remembers it: the same for every copy of one command, however its keys came ordered. */
export function bodyHashOf(command: Pick<Envelope, 'type' | 'payload'>): string {
  return createHash('sha256').update(command.type).update('\n').update(canonicalJson(command.payload)).digest('base64url').slice(0, 32);
}

/** What the inbox holds of a command processed before: the reply it gave, and its body's hash (null for rows older than hashes). */
export interface Processed {
  reply: Envelope;
  bodyHash: string | null;
}

/** The insert of `recordAndCommit` found a command in the inbox already. */
export const isProcessedBefore = (error: unknown): boolean => (error as { code?: string })?.code === '23505';

export class Inbox {
  private readonly record: Statement;
  private readonly stored: Statement;

  constructor(schema: string) {
    const table = `"${schema}"."inbox"`;
    // No `on conflict`: a command processed before fails the insert, and with it the transaction (see recordAndCommit).
    this.record = statement(
      `${schema}.inbox.record`,
      `insert into ${table} (message_id, message_type, saga_id, reply, body_hash)
       select * from jsonb_to_recordset($1::jsonb) as processed(message_id uuid, message_type text, saga_id uuid, reply jsonb, body_hash text)`,
    );
    this.stored = statement(`${schema}.inbox.replies`, `select message_id, reply, body_hash from ${table} where message_id = any($1::uuid[])`);
  }

  /**
   * Records commands as processed, with their replies, and commits the transaction of their effects: the
   * insert and the COMMIT travel together. If one of them was processed before (or by a concurrent
   * transaction, which this insert waited for), the insert fails, the transaction rolls back, and this
   * throws a `unique_violation` (see `isProcessedBefore`); the caller finds which with `processed` and
   * answers those with their stored replies. Sorted, so two batches never wait on each other in opposite orders.
   */
  async recordAndCommit(tx: Tx, processed: { command: Envelope; reply: Envelope; bodyHash: string }[]): Promise<void> {
    if (processed.length === 0) return tx.commit();
    const sorted = [...processed].sort((a, b) => (a.command.messageId < b.command.messageId ? -1 : a.command.messageId > b.command.messageId ? 1 : 0));
    await tx.commitWith(this.record, [
      JSON.stringify(sorted.map(({ command, reply, bodyHash }) => ({ message_id: command.messageId, message_type: command.type, saga_id: command.sagaId, reply, body_hash: bodyHash }))),
    ]);
  }

  /** What the inbox holds of these commands (their stored replies and body hashes), by message id. */
  async repliesTo(db: Database, messageIds: string[]): Promise<Map<string, Processed>> {
    if (messageIds.length === 0) return new Map();
    const rows = await db.query<{ message_id: string; reply: Envelope | null; body_hash: string | null }>(this.stored, [messageIds]);
    return new Map(rows.filter((row) => row.reply).map((row) => [row.message_id, { reply: row.reply!, bodyHash: row.body_hash }]));
  }
}
