import { Migration } from '@mikro-orm/migrations';
import { outboxTableSql } from '@sagaflow/shared';

export class Migration0001Initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "orchestrator"."saga" (
        "id" uuid primary key,
        "type" text not null,
        "business_key" text not null,
        "correlation_id" text not null,
        "status" text not null,
        "data" jsonb not null,
        "steps" jsonb not null,
        "awaiting" jsonb,
        "failure_reason" text,
        "version" integer not null default 1,
        "created_at" timestamptz not null,
        "updated_at" timestamptz not null,
        unique ("type", "business_key")
      );`);
    // Keyset pagination of a saga type's instances by business key (order ids are time-ordered UUIDv7).
    this.addSql(`create index "saga_type_status_key_idx" on "orchestrator"."saga" ("type", "status", "business_key");`);
    this.addSql(`
      create table "orchestrator"."saga_event" (
        "id" bigserial primary key,
        "saga_id" uuid not null,
        "at" timestamptz not null,
        "step" text,
        "kind" text not null,
        "message_id" uuid,
        "message_type" text,
        "outcome" text,
        "detail" text
      );`);
    this.addSql(`create index "saga_event_saga_idx" on "orchestrator"."saga_event" ("saga_id", "id");`);
    this.addSql(outboxTableSql('orchestrator'));
  }
}
