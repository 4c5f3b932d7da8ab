import { BaseEnv, createLogger, loadEnv } from '@sagaflow/shared';
import { z } from 'zod';

export const env = loadEnv(
  BaseEnv.extend({
    PORT: z.coerce.number().int().default(3000),
    /** The order saga's timers (see order-saga.definition.ts): reply timeout, resends, whole-saga deadline. */
    STEP_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
    STEP_RESENDS: z.coerce.number().int().min(0).max(100).default(2),
    SAGA_DEADLINE_MS: z.coerce.number().int().min(1_000).default(300_000),
    /** Attempts at an undo (transient errors and refusals alike) before the saga is COMPENSATION_FAILED. */
    COMPENSATION_ATTEMPTS: z.coerce.number().int().min(1).max(1000).default(20),
    /** How long the read endpoints wait for a service to answer a query. */
    QUERY_TIMEOUT_MS: z.coerce.number().int().min(100).default(5_000),
    /** How long an Idempotency-Key of POST /orders is remembered (and replayed). */
    IDEMPOTENCY_TTL_HOURS: z.coerce.number().int().min(1).default(24),
    /** Past this many messages in a .dlq (or sagaflow.unroutable), the orchestrator logs an error on every check until they are handled. */
    DEAD_LETTER_ALERT_DEPTH: z.coerce.number().int().min(1).default(1_000),
    DEAD_LETTER_CHECK_MS: z.coerce.number().int().min(100).default(60_000),
    /** Days the history of a saga that ended COMPLETED or COMPENSATED is kept (the saga row, the order's record, stays); 0 keeps it for good. */
    SAGA_HISTORY_RETENTION_DAYS: z.coerce.number().min(0).max(3650).default(90),
  }),
);
export const logger = createLogger('orchestrator', env.LOG_LEVEL);
