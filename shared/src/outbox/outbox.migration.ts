import { Migration } from '@mikro-orm/migrations';

/**
 * The transactional outbox table as it was first created. No process writes an outbox now (the
 * orchestrator's saga rows and the services' inboxes hold what is to send), but the migrations that
 * created it must keep creating it this way; later ones drop it.
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

/** The migration that gives a process's schema its outbox table. */
export function outboxMigration(schema: string) {
  return class AddOutbox extends Migration {
    override async up(): Promise<void> {
      this.addSql(outboxTableSql(schema));
    }
  };
}

/** Participants publish their replies from the inbox now (see CommandRunner): their outbox table goes. */
export function dropOutboxMigration(schema: string) {
  return class DropOutbox extends Migration {
    override async up(): Promise<void> {
      this.addSql(`drop table if exists "${schema}"."outbox"`);
    }
  };
}
