import { Migration } from '@mikro-orm/migrations';
import { inboxTableSql } from '@sagaflow/shared';

export class Migration0001Initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "inventory"."stock_item" (
        "sku" text primary key,
        "name" text not null,
        "price" integer not null check ("price" >= 0),
        "currency" char(3) not null,
        "available" integer not null check ("available" >= 0),
        "reserved" integer not null default 0 check ("reserved" >= 0)
      );`);
    this.addSql(`
      create table "inventory"."reservation" (
        "order_id" uuid primary key,
        "lines" jsonb not null,
        "currency" char(3),
        "status" text not null check ("status" in ('HELD', 'RELEASED')),
        "created_at" timestamptz not null default now(),
        "released_at" timestamptz
      );`);
    this.addSql(inboxTableSql('inventory'));
  }
}
