import type { OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { type Database, statement, type Statement } from '../database/database.js';

/** Rows a process keeps only for a while: which, by which time column, and for how long. */
export interface Retention {
  /** What the rows are, for the log. */
  what: string;
  /** The table, schema-qualified and quoted. */
  table: string;
  /** The row's time: it goes once this is older than `keepSeconds`. */
  column: string;
  /** How long rows are kept; null keeps them for good. */
  keepSeconds: number | null;
  /** A further condition on the row (`t` is the table), e.g. that its saga has ended. */
  where?: string;
}

/** Rows deleted per statement: short transactions, so a sweep never holds up the message path. */
const BATCH = 5_000;

/** Days as seconds; 0 days means for good (null). */
export const keepDays = (days: number): number | null => (days > 0 ? Math.round(days * 86_400) : null);

/**
 * Deletes what has outlived its retention, now and then, in small batches. Correctness never depends on
 * it; it keeps the inbox, the delivery counts, the saga history and the idempotency keys from growing
 * without bound. Several instances may sweep at once: each deletes what it finds.
 */
export class RetentionSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly sweeps: { retention: Retention; delete: Statement }[];
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
    retentions: Retention[],
    private readonly intervalMs: number,
  ) {
    this.sweeps = retentions
      .filter((retention) => retention.keepSeconds !== null)
      .map((retention) => ({
        retention,
        delete: statement(
          `retention.${retention.table}`,
          `with gone as (
             delete from ${retention.table} where ctid = any(array(
               select t.ctid from ${retention.table} t
               where t.${retention.column} < now() - make_interval(secs => $1)${retention.where ? ` and ${retention.where}` : ''}
               limit ${BATCH}))
             returning 1)
           select count(*)::int as deleted from gone`,
        ),
      }));
  }

  onApplicationBootstrap(): void {
    if (this.sweeps.length === 0) return;
    // unref: a pending sweep never keeps the process alive.
    this.timer = setInterval(() => (this.running ??= this.sweep().finally(() => (this.running = undefined))), this.intervalMs).unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass over every table: batches until a batch comes back short. Returns the rows deleted, by what. */
  async sweep(): Promise<Record<string, number>> {
    const deleted: Record<string, number> = {};
    for (const { retention, delete: remove } of this.sweeps) {
      try {
        let total = 0;
        for (let rows = BATCH; rows === BATCH; total += rows) {
          [{ deleted: rows }] = await this.db.query<{ deleted: number }>(remove, [retention.keepSeconds]);
        }
        deleted[retention.what] = total;
        if (total > 0) this.logger.info({ what: retention.what, deleted: total }, 'retention sweep deleted rows');
      } catch (error) {
        this.logger.warn({ what: retention.what, err: (error as Error).message }, 'retention sweep failed; will retry');
      }
    }
    return deleted;
  }
}
