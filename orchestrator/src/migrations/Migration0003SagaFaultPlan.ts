import { Migration } from '@mikro-orm/migrations';

/** A saga's fault plan (tests and demos), passed on to the participants with each command. */
export class Migration0003SagaFaultPlan extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "orchestrator"."saga" add column "fault_plan" jsonb;`);
  }
}
