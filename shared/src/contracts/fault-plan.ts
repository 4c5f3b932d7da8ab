import { z } from 'zod';
import { Text } from './define.js';

/**
 * What to do wrong, deliberately, when a participant handles one command — for tests and demos, and only
 * when the system runs with FAULT_INJECTION=true.
 * - `error`: fail with a transient error on the first N attempts (retried through the delay queues)
 * - `fail`: refuse the command for a business reason (the step fails at once); a string is the reason
 * - `delay`: wait this many ms before handling, inside the command's transaction (where a slow handler waits)
 * - `no-reply`: hang on the first N attempts (on their first delivery, like the crash faults), without an effect
 *   or a reply, until the step's work timeout (STEP_TIMEOUT_MS) gives the attempt up; the participant then
 *   retries it with the step's back-off
 * - `crash-before-commit` / `crash-after-commit`: the participant process kills itself (SIGKILL) just before
 *   or just after the command's transaction commits, on the first delivery; the redelivery goes through (after
 *   commit only a delivery that committed the command crashes, not a resend that finds it done)
 * - `crash-every-delivery`: the participant kills itself before the commit on every delivery (a poison
 *   message: the consumer's delivery limit must dead-letter it)
 * - `duplicate-reply`: the reply is published twice
 */
export const FaultSpec = z.strictObject({
  error: z.number().int().min(1).max(100).optional(),
  fail: z.union([z.literal(true), Text(200)]).optional(),
  delay: z.number().int().min(1).max(600_000).optional(),
  'no-reply': z.number().int().min(1).max(100).optional(),
  'crash-before-commit': z.literal(true).optional(),
  'crash-after-commit': z.literal(true).optional(),
  'crash-every-delivery': z.literal(true).optional(),
  'duplicate-reply': z.literal(true).optional(),
});
export type FaultSpec = z.infer<typeof FaultSpec>;

/** A saga's fault plan: a fault per command type (e.g. `payment.charge`, `inventory.release`). */
export const FaultPlan = z.record(z.string().regex(/^[a-z]+\.[a-z-]+$/, 'a command type, e.g. payment.charge'), FaultSpec);
export type FaultPlan = z.infer<typeof FaultPlan>;
