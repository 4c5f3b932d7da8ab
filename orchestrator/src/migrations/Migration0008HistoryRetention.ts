import { Migration } from '@mikro-orm/migrations';

/**
 * The retention sweep finds old history rows by their time. History rows arrive in time order, so a BRIN
 * index finds them for a few pages of index, and costs the insert on the message path next to nothing.
 */
export class Migration0008HistoryRetention extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create index "saga_history_at_brin" on "orchestrator"."saga_history" using brin ("at");`);
  }
}
