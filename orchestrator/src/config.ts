import { BaseEnv, createLogger, loadEnv } from '@sagaflow/shared';
import { z } from 'zod';

/** `role:key` pairs, comma-separated: `operator:k1,client:k2`. A key is 16–256 printable characters without spaces or commas. */
const ApiKeys = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((pair) => pair.trim())
      .filter(Boolean)
      .map((pair) => ({ role: pair.slice(0, pair.indexOf(':')), key: pair.slice(pair.indexOf(':') + 1) })),
  )
  .pipe(z.array(z.object({ role: z.enum(['client', 'operator'], 'each pair must be role:key, the role client or operator'), key: z.string().regex(/^[\x21-\x2b\x2d-\x7e]{16,256}$/, 'a key must be 16 to 256 printable characters without spaces or commas') })).min(1));

/** Unset, or set empty (as compose passes a variable it has no value for). */
const unsetOr = <S extends z.ZodType>(schema: S) => z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

export const env = loadEnv(
  BaseEnv.extend({
    /** Static API keys (local use, tests, trusted backends); see README, Security. */
    API_KEYS: unsetOr(ApiKeys),
    /** JWTs: verified against the issuer's JWKS; issuer and audience must match. */
    JWT_JWKS_URL: unsetOr(z.url()),
    JWT_ISSUER: unsetOr(z.string()),
    JWT_AUDIENCE: unsetOr(z.string()),
    /** Where a token's roles are (a dot path such as `realm_access.roles`): a list or a space-separated string holding `client` or `operator`. */
    JWT_ROLES_CLAIM: z.string().min(1).default('roles'),
    /** Set (e.g. `sub`): a client's token acts only for the customer this claim names. Unset: clients act for any customer. */
    JWT_CUSTOMER_CLAIM: unsetOr(z.string()),
    /** The dashboard's session cookies are encrypted with a key derived from this; unset, a key per process (sessions end with it). */
    UI_SESSION_SECRET: unsetOr(z.string().min(32, 'must be at least 32 characters')),
    /** How long a dashboard session lasts (never past a JWT's own expiry). */
    UI_SESSION_HOURS: z.coerce.number().min(0.01).max(168).default(8),
    /** The tracing UI's page for one trace, `{traceId}` standing for the id (e.g. http://localhost:16686/trace/{traceId}). */
    TRACING_UI_URL: unsetOr(z.url().refine((url) => url.includes('{traceId}'), 'must contain {traceId}')),
    PORT: z.coerce.number().int().default(3000),
    /** The order saga's timers (see order-saga.definition.ts): a participant's work on one attempt, and the whole saga's deadline. */
    STEP_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(30_000),
    SAGA_DEADLINE_MS: z.coerce.number().int().min(1_000).default(300_000),
    /**
     * Admission control: POST /orders answers 429 with Retry-After, placing nothing, while this many sagas are
     * running: an order accepted is one Sagaflow can finish quickly. Opt-in (0: off), also while the replies of
     * the last seconds say commands waited this long in their queues: replies tell a wait after the fact, so
     * after a short outage this bound sheds orders the system could already finish quickly.
     */
    ADMIT_MAX_ACTIVE_SAGAS: z.coerce.number().int().min(0).default(500),
    ADMIT_MAX_QUEUE_WAIT_MS: z.coerce.number().int().min(0).default(0),
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
  }).superRefine((env, context) => {
    if (env.JWT_JWKS_URL && !(env.JWT_ISSUER && env.JWT_AUDIENCE)) {
      context.addIssue({ code: 'custom', path: ['JWT_ISSUER'], message: 'JWT_JWKS_URL needs JWT_ISSUER and JWT_AUDIENCE' });
    }
  }),
);
export const logger = createLogger('orchestrator', env.LOG_LEVEL);

/** The API admits nobody without keys or an issuer: the process refuses to start, as for a bad setting (checked at start, not on import). */
export function requireAuthSettings(): void {
  if (env.API_KEYS || env.JWT_JWKS_URL) return;
  process.stderr.write('Invalid configuration:\n  API_KEYS: set API_KEYS (role:key pairs) or JWT_JWKS_URL: the API admits nobody without one (npm start makes keys)\n');
  process.exit(78); // EX_CONFIG
}
