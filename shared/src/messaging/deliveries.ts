import { Migration } from '@mikro-orm/migrations';
import type { ConsumeMessage } from 'amqplib';
import { HEADERS } from '../contracts/envelope.js';
import { type Queryable, statement } from '../database/database.js';

/** How often a message was started again after a crash, and how often such a start outlived its first moments. */
export interface Starts {
  /** Starts that a crash may have cut short: this one included. */
  starts: number;
  /** Earlier starts that ran on past SLOW_HANDLER_MS without taking the process down: not its fault when it died later. */
  survived: number;
}

/**
 * Deliveries of a message the broker gave out again after its consumer died. A message that keeps crashing
 * its consumer would otherwise come back without end; past the limit it is dead-lettered instead.
 *
 * Only redelivered messages are counted, one at a time and just before they are handled (so a message that
 * merely shared a crashed consumer's prefetch is not charged for it), in a row committed first: a count
 * survives the crash it is counting. A start that runs on past its first moments (a slow handler waiting)
 * is taken off the count when it does: the process that later dies, holding it, died of something else.
 * Counted here for classic and quorum queues alike: the broker's own count cannot take a start back.
 */
export class DeliveryCounter {
  private readonly count;
  private readonly outlived;

  constructor(
    private readonly db: Queryable,
    schema: string,
  ) {
    this.count = statement(
      `${schema}.delivery.count`,
      `insert into "${schema}"."delivery" (queue, message_id) values ($1, $2)
       on conflict (queue, message_id) do update set deliveries = delivery.deliveries + 1, last_at = now()
       returning deliveries, survived`,
    );
    this.outlived = statement(
      `${schema}.delivery.survived`,
      `update "${schema}"."delivery" set deliveries = greatest(deliveries - 1, 0), survived = survived + 1, last_at = now()
       where queue = $1 and message_id = $2`,
    );
  }

  /** How many times this delivery's message has now been started from this queue (this one included). */
  async started(queue: string, message: ConsumeMessage): Promise<Starts> {
    const [row] = await this.db.query<{ deliveries: number; survived: number }>(this.count, [queue, countedId(message)]);
    // The first delivery was never counted (only redeliveries are): the row's first count is the second start.
    return { starts: row.deliveries + 1, survived: row.survived };
  }

  /** This start ran on past its first moments: it no longer counts as one a crash cut short. */
  async survived(queue: string, message: ConsumeMessage): Promise<void> {
    await this.db.query(this.outlived, [queue, countedId(message)]);
  }
}

/** A copy the orchestrator sent again (x-resend) is counted apart: its first copy's bad luck is not its own. */
function countedId(message: ConsumeMessage): string {
  const resend = message.properties.headers?.[HEADERS.resend];
  return String(message.properties.messageId ?? `tag-${message.fields.deliveryTag}`) + (typeof resend === 'number' && resend > 0 ? `#${resend}` : '');
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

/** The migration that counts the starts that outlived their first moments (see DeliveryCounter.survived). */
export function deliverySurvivalMigration(schema: string) {
  return class AddDeliverySurvivals extends Migration {
    override async up(): Promise<void> {
      this.addSql(`alter table "${schema}"."delivery" add column "survived" integer not null default 0;`);
    }
  };
}
