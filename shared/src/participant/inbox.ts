import type { EntityManager } from '@mikro-orm/postgresql';
import type { Envelope } from '../contracts/envelope.js';
import { sql } from '../database/sql.js';

/**
 * The inbox: one row per command a service has processed, written in the same transaction as the
 * command's effects, holding the reply it produced. A redelivered or duplicated command finds its row,
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
  private readonly table: string;

  constructor(schema: string) {
    this.table = `"${schema}"."inbox"`;
  }

  /**
   * Claims commands inside the transaction of their effects, before those. A concurrent duplicate blocks
   * here until the first commits, then finds the row taken. Sorted, so two batches never wait on each
   * other in opposite orders. Returns the message ids claimed now; the others were processed before.
   */
  async claimAll(em: EntityManager, commands: Envelope[]): Promise<Set<string>> {
    const sorted = [...commands].sort((a, b) => (a.messageId < b.messageId ? -1 : a.messageId > b.messageId ? 1 : 0));
    const rows = await sql<{ message_id: string }>(
      em,
      `insert into ${this.table} (message_id, message_type, saga_id)
       select * from unnest(?::uuid[], ?::text[], ?::uuid[]) on conflict do nothing returning message_id`,
      [sorted.map((c) => c.messageId), sorted.map((c) => c.type), sorted.map((c) => c.sagaId)],
    );
    return new Set(rows.map((row) => row.message_id));
  }

  /** Gives claims back (their commands failed and will be retried), inside the batch's transaction. */
  async unclaim(em: EntityManager, messageIds: string[]): Promise<void> {
    if (messageIds.length) await sql(em, `delete from ${this.table} where message_id = any(?::uuid[])`, [messageIds]);
  }

  async recordReplies(em: EntityManager, replies: { messageId: string; reply: Envelope }[]): Promise<void> {
    if (replies.length === 0) return;
    await sql(
      em,
      `update ${this.table} as inbox set reply = given.reply
       from unnest(?::uuid[], ?::jsonb[]) as given(message_id, reply) where inbox.message_id = given.message_id`,
      [replies.map((r) => r.messageId), replies.map((r) => JSON.stringify(r.reply))],
    );
  }

  /** The stored replies of these commands, by message id. */
  async repliesTo(em: EntityManager, messageIds: string[]): Promise<Map<string, Envelope>> {
    if (messageIds.length === 0) return new Map();
    const rows = await sql<{ message_id: string; reply: Envelope | null }>(em, `select message_id, reply from ${this.table} where message_id = any(?::uuid[])`, [messageIds]);
    return new Map(rows.filter((row) => row.reply).map((row) => [row.message_id, row.reply!]));
  }
}
