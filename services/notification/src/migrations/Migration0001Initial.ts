import { Migration } from '@mikro-orm/migrations';
import { inboxTableSql } from '@sagaflow/shared';

export class Migration0001Initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "notification"."notification" (
        "id" uuid primary key,
        "order_id" uuid not null,
        "customer_id" text not null,
        "kind" text not null check ("kind" in ('confirmation', 'cancellation')),
        "reason" text,
        "created_at" timestamptz not null default now(),
        unique ("order_id", "kind")
      );`);
    this.addSql(inboxTableSql('notification'));
  }
}
