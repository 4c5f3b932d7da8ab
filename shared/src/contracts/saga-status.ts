import { z } from 'zod';

/**
 * A saga's status, as the engine keeps it and the HTTP API shows it.
 * RUNNING → COMPLETED, or RUNNING → COMPENSATING → COMPENSATED when a step before the pivot fails.
 * FAILED: a step after the pivot refused (it is never compensated; needs attention).
 * COMPENSATION_FAILED: an undo refused; the saga is half-undone and needs attention.
 */
export const SagaStatus = z.enum(['RUNNING', 'COMPENSATING', 'COMPLETED', 'COMPENSATED', 'FAILED', 'COMPENSATION_FAILED']);
export type SagaStatus = z.infer<typeof SagaStatus>;

/** The statuses a saga ends in: nothing moves it on by itself after these. */
export const FINAL_SAGA_STATUSES: readonly SagaStatus[] = ['COMPLETED', 'COMPENSATED', 'FAILED', 'COMPENSATION_FAILED'];

/**
 * The PostgreSQL NOTIFY channel on which the engine announces every saga's end, on commit (payload: JSON
 * with sagaId, type, businessKey, status). `LISTEN` on the orchestrator's database to follow sagas
 * without polling, as the benchmark does.
 */
export const SAGA_ENDED_CHANNEL = 'sagaflow_saga_ended';
