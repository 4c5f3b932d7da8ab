import { Migration } from '@mikro-orm/migrations';

/**
 * The outbox holds only what is still to send: the relay deletes a row once the broker confirmed it,
 * instead of marking it published (which rewrote the whole row) and deleting it an hour later.
 */
export class Migration0005OutboxHoldsUnsent extends Migration {
  override async up(): Promise<void> {
    this.addSql(`delete from "orchestrator"."outbox" where "published_at" is not null;`);
    this.addSql(`drop index if exists "orchestrator"."outbox_unpublished_idx";`);
    this.addSql(`alter table "orchestrator"."outbox" drop column "published_at";`);
  }
}
