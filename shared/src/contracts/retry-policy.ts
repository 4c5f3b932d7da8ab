import { z } from 'zod';

/**
 * How a failing step is retried: `attempts` in all (the first one included), the delay before attempt n+1
 * growing from `initialDelayMs` by `multiplier` up to `maxDelayMs`, spread by ±`jitter` (a fraction).
 * Commands carry their step's policy in the `x-retry-policy` header, so the participant retries as the saga
 * definition says.
 */
export const RetryPolicy = z.object({
  attempts: z.number().int().min(1).max(100),
  initialDelayMs: z.number().int().min(0),
  multiplier: z.number().min(1),
  maxDelayMs: z.number().int().min(0),
  jitter: z.number().min(0).max(1),
});
export type RetryPolicy = z.infer<typeof RetryPolicy>;

export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 5, initialDelayMs: 250, multiplier: 4, maxDelayMs: 120_000, jitter: 0.1 };

/**
 * Delayed retries wait in per-delay queues (no broker plugin): a message is parked, with its exact delay as
 * its expiration, in the smallest delay queue whose TTL is at least that delay.
 */
export const RETRY_DELAYS_MS = [250, 1_000, 5_000, 30_000, 120_000] as const;

/** The delay before the attempt after `failedAttempt` (1-based), jitter included. */
export function retryDelayMs(policy: RetryPolicy, failedAttempt: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** (failedAttempt - 1));
  return Math.max(0, Math.round(base * (1 + policy.jitter * (2 * random() - 1))));
}

/** The delay queue a retry waits in. */
export function retryDelayBucket(delayMs: number): number {
  return RETRY_DELAYS_MS.find((bucket) => bucket >= delayMs) ?? RETRY_DELAYS_MS[RETRY_DELAYS_MS.length - 1];
}

export const delayLabel = (ms: number) => (ms < 1_000 ? `${ms}ms` : ms < 60_000 ? `${ms / 1_000}s` : `${ms / 60_000}m`);
