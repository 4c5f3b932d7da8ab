import { Migration } from '@mikro-orm/migrations';
import { outboxTableSql } from './outbox.js';

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
