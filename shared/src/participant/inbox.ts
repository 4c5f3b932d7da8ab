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
   * Claims a command inside the handler's transaction, before its effects. A concurrent duplicate blocks
   * here until the first commits, then finds the row taken. False when the command was processed already.
   */
  async claim(em: EntityManager, command: Envelope): Promise<boolean> {
    const rows = await sql<{ message_id: string }>(em,
      `insert into ${this.table} (message_id, message_type, saga_id) values (?, ?, ?) on conflict do nothing returning message_id`,
      [command.messageId, command.type, command.sagaId],
    );
    return rows.length === 1;
  }

  async recordReply(em: EntityManager, command: Envelope, reply: Envelope): Promise<void> {
    await sql(em, `update ${this.table} set reply = ? where message_id = ?`, [JSON.stringify(reply), command.messageId]);
  }

  async replyTo(em: EntityManager, messageId: string): Promise<Envelope | undefined> {
    const rows = await sql<{ reply: Envelope | null }>(em, `select reply from ${this.table} where message_id = ?`, [messageId]);
    return rows[0]?.reply ?? undefined;
  }
}
