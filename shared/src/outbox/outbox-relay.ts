import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Envelope } from '../contracts/envelope.js';
import type { Publisher } from '../messaging/publisher.js';
import type { Outbox } from './outbox.js';

export interface OutboxRelayOptions {
  outbox: Outbox;
  em: EntityManager;
  publisher: Publisher;
  logger: Logger;
  /** How often to look for messages left behind (after a crash, or a failed publish). */
  pollIntervalMs?: number;
  /** Published rows are kept this long (for inspection), then deleted. */
  retentionMs?: number;
  batchSize?: number;
}

/**
 * Publishes outbox rows (confirmed) and marks them published. `kick()` after a commit publishes at once;
 * a poll picks up anything left behind. Rows are claimed with FOR UPDATE SKIP LOCKED, so several relays
 * (several instances) never publish the same row concurrently, and go out in insertion order.
 */
export class OutboxRelay {
  private draining?: Promise<void>;
  private again = false;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(private readonly options: OutboxRelayOptions) {}

  start(): void {
    const { pollIntervalMs = 1_000, retentionMs = 60 * 60_000 } = this.options;
    this.timers.push(setInterval(() => this.kick(), pollIntervalMs));
    this.timers.push(setInterval(() => void this.cleanUp(retentionMs), Math.min(retentionMs, 60_000)));
    this.kick();
  }

  /** Publishes a delayed message when it is due (the poll would too; this is just sooner). */
  kickAt(when: Date): void {
    const timer = setTimeout(() => this.kick(), Math.max(0, when.getTime() - Date.now()) + 5);
    timer.unref();
  }

  /** Publishes what is waiting, now; coalesces with a drain already running. */
  kick(): void {
    if (this.stopped) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  /** Stops polling after publishing what is waiting (graceful shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timers.forEach(clearInterval);
    await this.draining;
    await this.drain();
  }

  private async drain(): Promise<void> {
    const { batchSize = 200, logger } = this.options;
    try {
      while ((await this.publishBatch(batchSize)) === batchSize);
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'outbox publish failed; will retry');
    }
  }

  private async publishBatch(limit: number): Promise<number> {
    const { em, outbox, publisher } = this.options;
    return em.fork().transactional(async (tx) => {
      const rows = await tx.execute<{ id: string; exchange: string; routing_key: string; envelope: Envelope }[]>(
        `select id, exchange, routing_key, envelope from ${outbox.table}
         where published_at is null and (not_before is null or not_before <= now())
         order by id limit ? for update skip locked`,
        [limit],
      );
      if (rows.length === 0) return 0;
      // One channel keeps publish order; all confirms are awaited before the rows are marked.
      await Promise.all(rows.map((row) => publisher.publish(row.exchange, row.routing_key, row.envelope)));
      const ids = rows.map((row) => row.id);
      await tx.execute(`update ${outbox.table} set published_at = now() where id in (${ids.map(() => '?').join(', ')})`, ids);
      return rows.length;
    });
  }

  private async cleanUp(retentionMs: number): Promise<void> {
    const { em, outbox, logger } = this.options;
    try {
      await em.fork().execute(`delete from ${outbox.table} where published_at < now() - (? * interval '1 millisecond')`, [retentionMs]);
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'outbox clean-up failed');
    }
  }
}
