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
