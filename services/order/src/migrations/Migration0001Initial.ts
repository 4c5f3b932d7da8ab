import { Migration } from '@mikro-orm/migrations';
import { inboxTableSql } from '@sagaflow/shared';

export class Migration0001Initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "order"."orders" (
        "id" uuid primary key,
        "customer_id" text not null,
        "items" jsonb not null,
        "status" text not null check ("status" in ('PENDING', 'CONFIRMED', 'CANCELLED')),
        "total" integer check ("total" >= 0),
        "currency" char(3),
        "failure_reason" text,
        "created_at" timestamptz not null default now(),
        "updated_at" timestamptz not null default now()
      );`);
    this.addSql(inboxTableSql('order'));
  }
}
