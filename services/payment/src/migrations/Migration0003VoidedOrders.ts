import { Migration } from '@mikro-orm/migrations';

/** Orders refunded before they were ever charged (the refund overtook a timed-out charge): never charge them. */
export class Migration0003VoidedOrders extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table "payment"."voided_order" (
        "order_id" uuid primary key,
        "voided_at" timestamptz not null default now()
      );`);
  }
}
