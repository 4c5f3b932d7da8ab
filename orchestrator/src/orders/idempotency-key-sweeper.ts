import { MikroORM } from '@mikro-orm/postgresql';
import { Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { logger } from '../config.js';
import { deleteExpiredKeys } from './idempotency-keys.js';

const SWEEP_INTERVAL_MS = 10 * 60_000;

/**
 * Deletes expired idempotency keys now and then. Correctness does not depend on it (an expired key is
 * also deleted when it is used again); it only keeps the table from growing without bound.
 */
@Injectable()
export class IdempotencyKeySweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer?: NodeJS.Timeout;

  constructor(private readonly orm: MikroORM) {}

  onApplicationBootstrap(): void {
    // unref: a pending sweep never keeps the process alive.
    this.timer = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS).unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  async sweep(): Promise<void> {
    try {
      const deleted = await deleteExpiredKeys(this.orm.em.fork());
      if (deleted > 0) logger.info({ deleted }, 'expired idempotency keys deleted');
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'idempotency key sweep failed; will retry');
    }
  }
}
