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

export class Inbox {
  private readonly record: Statement;
  private readonly stored: Statement;

  constructor(schema: string) {
    const table = `"${schema}"."inbox"`;
    this.record = statement(
      `${schema}.inbox.record`,
      `insert into ${table} (message_id, message_type, saga_id, reply)
       select * from jsonb_to_recordset($1::jsonb) as processed(message_id uuid, message_type text, saga_id uuid, reply jsonb)
       on conflict do nothing returning message_id`,
    );
    this.stored = statement(`${schema}.inbox.replies`, `select message_id, reply from ${table} where message_id = any($1::uuid[])`);
  }

  /**
   * Records commands as processed, with their replies, inside the transaction of their effects. Returns
   * the ids recorded now; a missing one was processed before (or by a concurrent transaction, which this
   * insert waited for): the caller rolls back and answers it with the stored reply. Sorted, so two
   * batches never wait on each other in opposite orders.
   */
  async recordAll(tx: Tx, processed: { command: Envelope; reply: Envelope }[]): Promise<Set<string>> {
    if (processed.length === 0) return new Set();
    const sorted = [...processed].sort((a, b) => (a.command.messageId < b.command.messageId ? -1 : a.command.messageId > b.command.messageId ? 1 : 0));
    const rows = await tx.query<{ message_id: string }>(this.record, [
      JSON.stringify(sorted.map(({ command, reply }) => ({ message_id: command.messageId, message_type: command.type, saga_id: command.sagaId, reply }))),
    ]);
    return new Set(rows.map((row) => row.message_id));
  }

  /** The stored replies of these commands, by message id. */
  async repliesTo(db: Database, messageIds: string[]): Promise<Map<string, Envelope>> {
    if (messageIds.length === 0) return new Map();
    const rows = await db.query<{ message_id: string; reply: Envelope | null }>(this.stored, [messageIds]);
    return new Map(rows.filter((row) => row.reply).map((row) => [row.message_id, row.reply!]));
  }
}
