import { Migration } from '@mikro-orm/migrations';

/**
 * The timer poll reads only the due rows: an index on the timers of running sagas. A saga's timer changes
 * seldom (its deadline, or a publish grace rounded to a few seconds), so most transitions stay HOT.
 */
export class Migration0010SagaTimerIndex extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create index "saga_timer_idx" on "orchestrator"."saga" ("timer_at") where "timer_at" is not null and "status" in ('RUNNING', 'COMPENSATING');`,
    );
  }
}
