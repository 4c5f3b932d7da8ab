import { Migration } from '@mikro-orm/migrations';

/**
 * The trace a saga belongs to (W3C traceparent and tracestate, as JSON), kept with the saga: the row is its
 * outbox, so a command the timer poll sends again, and every step span, continue the order's trace. Null
 * while tracing is off; a nullable column without a default changes no existing row.
 */
export class Migration0009SagaTraceContext extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "orchestrator"."saga" add column "trace_context" jsonb;`);
  }
}
