import type { Envelope } from '../contracts/envelope.js';
import { type Database, statement, type Statement, type Tx } from '../database/database.js';

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
      `insert into ${table} (message_id, message_type, saga_id, reply)
       select * from jsonb_to_recordset($1::jsonb) as processed(message_id uuid, message_type text, saga_id uuid, reply jsonb)`,
    );
    this.stored = statement(`${schema}.inbox.replies`, `select message_id, reply from ${table} where message_id = any($1::uuid[])`);
  }

  /**
   * Records commands as processed, with their replies, and commits the transaction of their effects: the
   * insert and the COMMIT travel together. If one of them was processed before (or by a concurrent
   * transaction, which this insert waited for), the insert fails, the transaction rolls back, and this
   * throws a `unique_violation` (see `isProcessedBefore`); the caller finds which with `processed` and
   * answers those with their stored replies. Sorted, so two batches never wait on each other in opposite orders.
   */
  async recordAndCommit(tx: Tx, processed: { command: Envelope; reply: Envelope }[]): Promise<void> {
    if (processed.length === 0) return tx.commit();
    const sorted = [...processed].sort((a, b) => (a.command.messageId < b.command.messageId ? -1 : a.command.messageId > b.command.messageId ? 1 : 0));
    await tx.commitWith(this.record, [
      JSON.stringify(sorted.map(({ command, reply }) => ({ message_id: command.messageId, message_type: command.type, saga_id: command.sagaId, reply }))),
    ]);
  }

  /** The stored replies of these commands, by message id. */
  async repliesTo(db: Database, messageIds: string[]): Promise<Map<string, Envelope>> {
    if (messageIds.length === 0) return new Map();
    const rows = await db.query<{ message_id: string; reply: Envelope | null }>(this.stored, [messageIds]);
    return new Map(rows.filter((row) => row.reply).map((row) => [row.message_id, row.reply!]));
  }
}
