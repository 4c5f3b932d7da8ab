import { Migration } from '@mikro-orm/migrations';

/**
 * A saga written in place. Its state machine's state goes into one `state` column (one shape for the
 * engine, the repository and the reads). `timer_at` loses its index (timers are found among the running
 * sagas, which a partial index keeps), so a transition that changes no indexed column is a HOT update,
 * with room left on each page for it. The row is its own outbox: the outbox table goes, and commands it
 * still held are sent again by the timer poll. The history becomes one row per change, keyed by the
 * version the change made, with no sequence behind it.
 */
export class Migration0006LeanSaga extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "orchestrator"."saga" add column "state" jsonb;`);
    this.addSql(`
      update "orchestrator"."saga" set "state" = jsonb_build_object(
        'status', "status", 'data', "data", 'steps', "steps", 'awaiting', "awaiting", 'failureReason', "failure_reason",
        'deadlineAt', to_char("deadline_at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));`);
    this.addSql(`alter table "orchestrator"."saga" alter column "state" set not null,
      drop column "data", drop column "steps", drop column "awaiting", drop column "failure_reason", drop column "deadline_at";`);
    this.addSql(`update "orchestrator"."saga" set "timer_at" = now() where "id" in (select ("envelope"->>'sagaId')::uuid from "orchestrator"."outbox");`);
    this.addSql(`drop table "orchestrator"."outbox";`);
    this.addSql(`drop index "orchestrator"."saga_timer_idx";`);
    this.addSql(`create index "saga_active_idx" on "orchestrator"."saga" ("created_at") where "status" in ('RUNNING', 'COMPENSATING');`);
    this.addSql(`alter table "orchestrator"."saga" set (fillfactor = 50);`);

    this.addSql(`
      create table "orchestrator"."saga_history" (
        "saga_id" uuid not null,
        "seq" integer not null,
        "at" timestamptz not null,
        "events" jsonb not null,
        primary key ("saga_id", "seq")
      );`);
    this.addSql(`
      insert into "orchestrator"."saga_history" ("saga_id", "seq", "at", "events")
      select "saga_id", row_number() over (partition by "saga_id" order by "id"), "at",
        jsonb_build_array(jsonb_strip_nulls(jsonb_build_object('kind', "kind", 'step', "step", 'messageId', "message_id",
          'messageType', "message_type", 'outcome', "outcome", 'detail', "detail")))
      from "orchestrator"."saga_event";`);
    // The next change's row is numbered by the version it makes: past every row numbered here.
    this.addSql(`update "orchestrator"."saga" set "version" = greatest("version", (select count(*) from "orchestrator"."saga_event" where "saga_id" = "saga"."id"));`);
    this.addSql(`drop table "orchestrator"."saga_event";`);
  }
}
