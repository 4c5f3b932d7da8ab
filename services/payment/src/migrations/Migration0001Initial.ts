import { Migration } from '@mikro-orm/migrations';
import { inboxTableSql } from '@sagaflow/shared';

export class Migration0001Initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "payment"."payment" (
        "id" uuid primary key,
        "order_id" uuid not null,
        "type" text not null check ("type" in ('charge', 'refund')),
        "amount" integer not null check ("amount" >= 0),
        "currency" char(3) not null,
        "payment_method" text not null,
        "created_at" timestamptz not null default now(),
        unique ("order_id", "type")
      );`);
    this.addSql(inboxTableSql('payment'));
  }
}
