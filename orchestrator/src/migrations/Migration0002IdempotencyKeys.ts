import { Migration } from '@mikro-orm/migrations';

export class Migration0002IdempotencyKeys extends Migration {
  override async up(): Promise<void> {
    // One row per (scope, key): the primary key is what makes a racing duplicate wait for the first to commit.
    this.addSql(`
      create table "orchestrator"."idempotency_key" (
        "scope" text not null,
        "key" text not null,
        "request_hash" text not null,
        "order_id" uuid not null,
        "response" jsonb, -- the 202 body; written in the transaction that inserts the row, once the saga has started
        "created_at" timestamptz not null,
        "expires_at" timestamptz not null,
        primary key ("scope", "key")
      );`);
    // The sweeper deletes by expiry.
    this.addSql(`create index "idempotency_key_expires_idx" on "orchestrator"."idempotency_key" ("expires_at");`);
  }
}
