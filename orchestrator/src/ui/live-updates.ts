import type { BeforeApplicationShutdown, MessageEvent } from '@nestjs/common';
import { Database, statement } from '@sagaflow/shared';
import { defer, exhaustMap, interval, map, merge, mergeMap, type Observable, share, Subject, takeUntil, timer } from 'rxjs';
import { logger } from '../config.js';
import { DeadLetters } from '../console/dead-letters.js';

/** What the dashboard is told: sagas that changed, or the dead-letter queues' depths. */
export type LiveEvent =
  | { type: 'sagas'; data: { sagas: SagaChange[]; more: boolean } }
  | { type: 'dead-letters'; data: { depths: Record<string, number> } };

interface SagaChange {
  sagaId: string;
  orderId: string;
  status: string;
  updatedAt: Date;
}

const TICK_MS = 1_000;
/** Comment lines keep proxies from closing an idle event stream. */
const KEEP_ALIVE_MS = 15_000;
/** History rows are stamped before they commit, and by any instance's clock: look back this far, then skip what was sent. */
const OVERLAP_MS = 5_000;
const MAX_PER_TICK = 500;

/**
 * Sagas changed since a time, found through their history rows: every change writes one, and `at` has a
 * BRIN index, so the look-up reads a few recent pages and the hot saga row needs no index of its own.
 */
const CHANGED = statement(
  'ui.changed-sagas',
  `select id as "sagaId", business_key as "orderId", status, updated_at as "updatedAt" from "orchestrator"."saga"
   where id in (select saga_id from "orchestrator"."saga_history" where at > $1)
   order by updated_at desc limit ${MAX_PER_TICK + 1}`,
);

/**
 * Live updates for the dashboard: once a second, while anyone watches, the sagas that changed and the
 * dead-letter depths when they moved. One poll serves every watcher; it stops when the last one leaves.
 */
export class LiveUpdates implements BeforeApplicationShutdown {
  private readonly events: Observable<LiveEvent>;
  private readonly closing = new Subject<void>();
  private since = 0;
  /** Each saga's last change already sent, so the look-back sends nothing twice. */
  private readonly sent = new Map<string, number>();
  private depths = '';

  constructor(
    private readonly db: Database,
    private readonly deadLetters: DeadLetters,
  ) {
    this.events = defer(() => {
      // A new watch starts from now: what happened before, the page loaded itself.
      this.since = Date.now();
      this.sent.clear();
      this.depths = '';
      return timer(0, TICK_MS);
    }).pipe(
      exhaustMap(() => this.tick()),
      mergeMap((events) => events),
      share(),
    );
  }

  /** One watcher's stream: it ends when `until` (the session's end) comes, or the process stops. */
  watch(until?: number): Observable<MessageEvent> {
    const stream = merge(this.events, interval(KEEP_ALIVE_MS).pipe(map(() => ({ comment: 'keep-alive' })))).pipe(takeUntil(this.closing));
    return until === undefined ? stream : stream.pipe(takeUntil(timer(new Date(until))));
  }

  /** An open stream would hold the HTTP server's shutdown until the grace ran out: end them first. */
  beforeApplicationShutdown(): void {
    this.closing.next();
  }

  private async tick(): Promise<LiveEvent[]> {
    const startedAt = Date.now();
    const events: LiveEvent[] = [];
    try {
      const rows = await this.db.query<SagaChange>(CHANGED, [new Date(this.since - OVERLAP_MS)]);
      this.since = startedAt;
      const fresh = rows.slice(0, MAX_PER_TICK).filter((row) => this.sent.get(row.sagaId) !== row.updatedAt.getTime());
      for (const row of fresh) this.sent.set(row.sagaId, row.updatedAt.getTime());
      for (const [sagaId, at] of this.sent) if (at < startedAt - 2 * OVERLAP_MS) this.sent.delete(sagaId);
      if (fresh.length) events.push({ type: 'sagas', data: { sagas: fresh, more: rows.length > MAX_PER_TICK } });

      const depths = await this.deadLetters.depths();
      if (JSON.stringify(depths) !== this.depths) {
        this.depths = JSON.stringify(depths);
        events.push({ type: 'dead-letters', data: { depths } });
      }
    } catch (error) {
      // PostgreSQL or RabbitMQ away: the next tick asks again, the watchers stay connected.
      logger.warn({ err: (error as Error).message }, 'dashboard live updates: poll failed; will retry');
    }
    return events;
  }
}
