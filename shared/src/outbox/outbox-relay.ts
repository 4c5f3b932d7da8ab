import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Envelope } from '../contracts/envelope.js';
import { sql } from '../database/sql.js';
import type { Publisher } from '../messaging/publisher.js';
import type { Outbox, OutboxRow } from './outbox.js';

export interface OutboxRelayOptions {
  outbox: Outbox;
  em: EntityManager;
  publisher: Publisher;
  logger: Logger;
  /** How often to look for messages left behind (after a crash, or a failed publish). */
  pollIntervalMs?: number;
  /** The poll leaves a row this long to the process that wrote it before publishing it itself. */
  graceMs?: number;
  /** Published rows are kept this long (for inspection), then deleted. */
  retentionMs?: number;
  batchSize?: number;
}

/**
 * Publishes outbox rows (confirmed) and marks them published.
 *
 * The fast path: the process that committed rows hands them to `dispatch()`, which publishes them at
 * once and marks them published in batches (one UPDATE for many rows, off the message's path). The safe
 * path: a poll publishes rows nobody published within a grace period (their writer crashed, or the
 * broker was away) and rows whose delay (`not_before`) is over. A row may so go out twice; receivers
 * dedupe by message id. Rows are claimed with FOR UPDATE SKIP LOCKED, so several relays (several
 * instances) never poll the same row concurrently.
 */
export class OutboxRelay {
  private draining?: Promise<void>;
  private again = false;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  /** Rows published on the fast path, waiting to be marked. */
  private toMark: string[] = [];
  private marking?: Promise<void>;
  private markTimer?: NodeJS.Timeout;

  constructor(private readonly options: OutboxRelayOptions) {}

  start(): void {
    const { pollIntervalMs = 1_000, retentionMs = 60 * 60_000 } = this.options;
    this.timers.push(setInterval(() => this.kick(), pollIntervalMs));
    this.timers.push(setInterval(() => void this.cleanUp(retentionMs), Math.min(retentionMs, 60_000)));
    this.kick();
  }

  /**
   * Publishes rows a transaction has just committed. Resolves when the broker has confirmed them (or
   * refused: the poll then retries); rows that must wait are left to the poll, woken when they are due.
   */
  async dispatch(rows: OutboxRow[]): Promise<void> {
    const now = Date.now();
    const due = rows.filter((row) => !row.notBefore || row.notBefore.getTime() <= now);
    for (const row of rows) if (row.notBefore && row.notBefore.getTime() > now) this.kickAt(row.notBefore);
    if (due.length === 0) return;
    const results = await Promise.allSettled(due.map((row) => this.options.publisher.publish(row.exchange, row.routingKey, row.envelope)));
    results.forEach((result, index) => {
      if (result.status === 'fulfilled') this.toMark.push(due[index].id);
      else this.options.logger.warn({ messageId: due[index].envelope.messageId, err: String(result.reason) }, 'publish failed; the outbox poll will retry');
    });
    this.markSoon();
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

  /** Stops polling after publishing what is waiting and marking what was published (graceful shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timers.forEach(clearInterval);
    clearTimeout(this.markTimer);
    await this.draining;
    await this.marking;
    await this.markPublished();
    await this.drain(0);
  }

  private markSoon(): void {
    if (this.markTimer || this.stopped) return;
    this.markTimer = setTimeout(() => {
      this.markTimer = undefined;
      if (this.marking) return this.markSoon();
      this.marking = this.markPublished().finally(() => (this.marking = undefined));
    }, 100);
  }

  private async markPublished(): Promise<void> {
    const ids = this.toMark.splice(0);
    if (ids.length === 0) return;
    try {
      await sql(this.options.em.fork(), markSql(this.options.outbox), [ids]);
    } catch (error) {
      // Unmarked rows would be published again by the poll (harmless); try again later.
      this.toMark.push(...ids);
      this.options.logger.warn({ err: (error as Error).message, rows: ids.length }, 'could not mark outbox rows published; will retry');
      this.markSoon();
    }
  }

  private async drain(graceMs = this.options.graceMs ?? 5_000): Promise<void> {
    const { batchSize = 200, logger } = this.options;
    try {
      while ((await this.publishBatch(batchSize, graceMs)) === batchSize);
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'outbox publish failed; will retry');
    }
  }

  private async publishBatch(limit: number, graceMs: number): Promise<number> {
    const { em, outbox, publisher } = this.options;
    // Mostly there is nothing to do: one cheap read, so an idle poll opens no transaction.
    const [{ due }] = await sql<{ due: boolean }>(em.fork(), `select exists (select 1 from ${outbox.table} where ${DUE}) as due`, [graceMs]);
    if (!due) return 0;
    return em.fork().transactional(async (tx) => {
      const rows = await sql<{ id: string; exchange: string; routing_key: string; envelope: Envelope }>(
        tx,
        `select id, exchange, routing_key, envelope from ${outbox.table} where ${DUE} order by id limit ? for update skip locked`,
        [graceMs, limit],
      );
      if (rows.length === 0) return 0;
      // One channel keeps publish order; all confirms are awaited before the rows are marked.
      await Promise.all(rows.map((row) => publisher.publish(row.exchange, row.routing_key, row.envelope)));
      await sql(tx, markSql(outbox), [rows.map((row) => row.id)]);
      return rows.length;
    });
  }

  private async cleanUp(retentionMs: number): Promise<void> {
    const { em, outbox, logger } = this.options;
    try {
      await sql(em.fork(), `delete from ${outbox.table} where published_at < now() - (? * interval '1 millisecond')`, [retentionMs]);
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'outbox clean-up failed');
    }
  }
}

/** Rows to publish: never published, and past their delay or (with `?` the grace in ms) left by their writer. */
const DUE = `published_at is null and coalesce(not_before, created_at + ? * interval '1 millisecond') <= now()`;
const markSql = (outbox: Outbox) => `update ${outbox.table} set published_at = now() where id = any(?::bigint[])`;
