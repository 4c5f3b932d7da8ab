import { Migration } from '@mikro-orm/migrations';
import type { ConsumeMessage } from 'amqplib';
import { HEADERS } from '../contracts/envelope.js';
import { type Queryable, statement } from '../database/database.js';

/**
 * Deliveries of a message the broker gave out again, for queues whose broker does not count them (classic
 * queues; quorum queues send `x-delivery-count`). A message that keeps crashing or stalling its consumer
 * would otherwise come back without end; past the limit it is dead-lettered instead.
 *
 * Only redelivered messages are counted, one at a time and just before they are handled (so a message that
 * merely shared a crashed consumer's prefetch is not charged for it), in a row committed first: a count
 * survives the crash it is counting.
 */
export class DeliveryCounter {
  private readonly count;

  constructor(
    private readonly db: Queryable,
    schema: string,
  ) {
    this.count = statement(
      `${schema}.delivery.count`,
      `insert into "${schema}"."delivery" (queue, message_id) values ($1, $2)
       on conflict (queue, message_id) do update set deliveries = delivery.deliveries + 1, last_at = now()
       returning deliveries`,
    );
  }

  /** How many times this delivery's message has now been started from this queue (this one included). */
  async started(queue: string, message: ConsumeMessage): Promise<number> {
    // Quorum queues count returns (0 on the first delivery): no row needed. RabbitMQ 4 counts every return in
    // x-acquired-count, and in x-delivery-count only those a consumer called failed (not a crash).
    const headers = message.properties.headers;
    const brokerCount = headers?.['x-acquired-count'] ?? headers?.['x-delivery-count'];
    if (typeof brokerCount === 'number' && Number.isInteger(brokerCount) && brokerCount >= 0) return brokerCount + 1;
    // A copy the orchestrator sent again (x-resend) is counted apart: its first copy's bad luck is not its own.
    const resend = headers?.[HEADERS.resend];
    const id = String(message.properties.messageId ?? `tag-${message.fields.deliveryTag}`) + (typeof resend === 'number' && resend > 0 ? `#${resend}` : '');
    const [row] = await this.db.query<{ deliveries: number }>(this.count, [queue, id]);
    // The first delivery was never counted (only redeliveries are): the row's first count is the second start.
    return row.deliveries + 1;
  }
}

/** The migration that gives a process's schema its delivery counts. */
export function deliveryCountMigration(schema: string) {
  return class AddDeliveryCounts extends Migration {
    override async up(): Promise<void> {
      this.addSql(`
        create table "${schema}"."delivery" (
          "queue" text not null,
          "message_id" text not null,
          "deliveries" integer not null default 1,
          "last_at" timestamptz not null default now(),
          primary key ("queue", "message_id")
        );`);
    }
  };
}
