import { HttpException, HttpStatus, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { env, logger } from '../config.js';
import type { ErrorBody } from '../http/error-body.js';
import { SagaRuntime } from '../saga-engine/saga-runtime.js';
import { recentQueueWaitMs } from '../saga-engine/saga-telemetry.js';

/** How often the count of running sagas is read again (between reads, the sagas started here are added). */
const REFRESH_MS = 1_000;

/** 429 with Retry-After: nothing was placed; the client may try again (with the same Idempotency-Key). */
export class TooManyOrders extends HttpException {
  constructor(
    readonly retryAfterSeconds: number,
    why: string,
  ) {
    super({ statusCode: 429, error: 'Too Many Requests', message: `${why}: nothing was placed; try again in ${retryAfterSeconds} s` } satisfies ErrorBody, HttpStatus.TOO_MANY_REQUESTS);
  }
}

/**
 * Admission control for new orders: shed load at the door rather than queue what cannot be finished. An
 * order is refused while the work in hand passes a bound: the sagas running, or (opt-in) how long commands
 * have lately waited in their queues, as the replies tell. The check reads memory only; the count is
 * refreshed in the background, so a request never waits for it, and a failed refresh keeps the last count.
 */
@Injectable()
export class Admission implements OnApplicationBootstrap, OnApplicationShutdown {
  private active = 0;
  private startedSinceRead = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly runtime: SagaRuntime) {}

  onApplicationBootstrap(): void {
    if (env.ADMIT_MAX_ACTIVE_SAGAS === 0) return;
    const refresh = () =>
      this.runtime.engine.repository.activeCount().then(
        (active) => ((this.active = active), (this.startedSinceRead = 0)),
        (error: Error) => logger.debug({ err: error.message }, 'cannot count the running sagas; keeping the last count'),
      );
    void refresh();
    this.timer = setInterval(() => void refresh(), REFRESH_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Throws TooManyOrders if a new order must wait; else counts it in. */
  admit(): void {
    const running = this.active + this.startedSinceRead;
    if (env.ADMIT_MAX_ACTIVE_SAGAS > 0 && running >= env.ADMIT_MAX_ACTIVE_SAGAS) {
      throw new TooManyOrders(2, `${running} orders are in hand (ADMIT_MAX_ACTIVE_SAGAS ${env.ADMIT_MAX_ACTIVE_SAGAS})`);
    }
    const waitMs = recentQueueWaitMs();
    if (env.ADMIT_MAX_QUEUE_WAIT_MS > 0 && waitMs > env.ADMIT_MAX_QUEUE_WAIT_MS) {
      throw new TooManyOrders(Math.min(30, Math.ceil(waitMs / 1_000)), `commands wait ${(waitMs / 1_000).toFixed(1)} s in their queues (ADMIT_MAX_QUEUE_WAIT_MS ${env.ADMIT_MAX_QUEUE_WAIT_MS})`);
    }
    this.startedSinceRead++;
  }
}
