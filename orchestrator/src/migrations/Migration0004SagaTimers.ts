import { Migration } from '@mikro-orm/migrations';

/** Durable timers: a saga's deadline, and when the timer poll must next look at it. */
export class Migration0004SagaTimers extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "orchestrator"."saga" add column "deadline_at" timestamptz, add column "timer_at" timestamptz;`);
    this.addSql(`create index "saga_timer_idx" on "orchestrator"."saga" ("timer_at") where "timer_at" is not null;`);
  }
}
