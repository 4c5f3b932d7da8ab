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
  batchSize?: number;
}

/**
 * Publishes outbox rows (confirmed) and deletes them once published: the table holds only what is still
 * to send. (A delete writes a few bytes of WAL; marking a row rewrote all of it. The saga's history
 * keeps what was sent, by message id.)
 *
 * The fast path: the process that committed rows hands them to `dispatch()`, which publishes them at
 * once and deletes them in batches (one DELETE for many rows, off the message's path). The safe
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
  /** Rows published on the fast path, waiting to be deleted. */
  private toDelete: string[] = [];
  private deleting?: Promise<void>;
  private deleteTimer?: NodeJS.Timeout;

  constructor(private readonly options: OutboxRelayOptions) {}

  start(): void {
    const { pollIntervalMs = 1_000 } = this.options;
    this.timers.push(setInterval(() => this.kick(), pollIntervalMs));
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
      if (result.status === 'fulfilled') this.toDelete.push(due[index].id);
      else this.options.logger.warn({ messageId: due[index].envelope.messageId, err: String(result.reason) }, 'publish failed; the outbox poll will retry');
    });
    this.deleteSoon();
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

  /** Stops polling after publishing what is waiting and deleting what was published (graceful shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timers.forEach(clearInterval);
    clearTimeout(this.deleteTimer);
    await this.draining;
    await this.deleting;
    await this.deletePublished();
    await this.drain(0);
  }

  private deleteSoon(): void {
    if (this.deleteTimer || this.stopped) return;
    this.deleteTimer = setTimeout(() => {
      this.deleteTimer = undefined;
      if (this.deleting) return this.deleteSoon();
      this.deleting = this.deletePublished().finally(() => (this.deleting = undefined));
    }, 100);
  }

  private async deletePublished(): Promise<void> {
    const ids = this.toDelete.splice(0);
    if (ids.length === 0) return;
    try {
      await sql(this.options.em.fork(), deleteSql(this.options.outbox), [ids]);
    } catch (error) {
      // Rows left would be published again by the poll (harmless: receivers dedupe); try again later.
      this.toDelete.push(...ids);
      this.options.logger.warn({ err: (error as Error).message, rows: ids.length }, 'could not delete published outbox rows; will retry');
      this.deleteSoon();
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
      // One channel keeps publish order; all confirms are awaited before the rows are deleted.
      await Promise.all(rows.map((row) => publisher.publish(row.exchange, row.routing_key, row.envelope)));
      await sql(tx, deleteSql(outbox), [rows.map((row) => row.id)]);
      return rows.length;
    });
  }

}

/** Rows to publish: past their delay or (with `?` the grace in ms) left by their writer. */
const DUE = `coalesce(not_before, created_at + ? * interval '1 millisecond') <= now()`;
const deleteSql = (outbox: Outbox) => `delete from ${outbox.table} where id = any(?::bigint[])`;
