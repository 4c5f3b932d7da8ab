import { z } from 'zod';
import { BROKER_DELIVERY_LIMIT } from '../topology/topology.js';

/** Unset, or set empty (as compose passes a variable it has no value for). */
const unsetIfEmpty = <S extends z.ZodType>(schema: S) => z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

/** Settings every process reads. Each process extends this with its own. */
export const BaseEnv = z.object({
  /** The broker, or a cluster's nodes as a comma-separated list: a process connects to one and fails over to the next. */
  AMQP_URL: z
    .string()
    .default('amqp://guest:guest@127.0.0.1:5672/%2F')
    .transform((list) => list.split(',').map((url) => url.trim()))
    .pipe(z.array(z.url()).min(1)),
  DATABASE_URL: z.url().default('postgres://postgres@127.0.0.1:5432/sagaflow'),
  /**
   * classic (durable, the default: the faster on one node) or quorum (replicated: for a cluster). Every
   * process must agree; docs/performance.md has the measurements.
   */
  QUEUE_TYPE: z.enum(['quorum', 'classic']).default('classic'),
  PREFETCH: z.coerce.number().int().min(1).max(1000).default(32),
  /**
   * Opt-in: up to this many commands or replies for one queue that are ready together travel as one AMQP
   * message (a bundle); each part is still acked, retried and dead-lettered alone. 1 (the default): one message each.
   */
  BUNDLE_MAX: z.coerce.number().int().min(1).max(100).default(1),
  /**
   * The largest message body (bytes) a consumer takes: a larger one is dead-lettered at once as malformed,
   * and a publisher refuses to send one. A command of a 50-line order is about 3 KB.
   */
  MAX_MESSAGE_BYTES: z.coerce.number().int().min(1_024).max(16 * 1024 * 1024).default(256 * 1024),
  /**
   * A message whose start crashes its consumer is started at most this many times; the next delivery
   * dead-letters it (`delivery-limit`). Counted in the process's own schema; a start that outlives its first
   * moments (SLOW_HANDLER_MS) is not the one that crashed, and is taken off the count.
   */
  MAX_DELIVERIES: z.coerce.number().int().min(1).max(BROKER_DELIVERY_LIMIT).default(4),
  /**
   * Days a service remembers a processed command (its inbox row, to answer a duplicate with the same reply)
   * and a redelivered message's count; 0 keeps them for good. It must outlast every way a command can come
   * again: resends, redeliveries, and a replay from a .dlq.
   */
  INBOX_RETENTION_DAYS: z.coerce.number().min(0).max(3650).default(30),
  /** How often each process deletes what has outlived its retention. */
  RETENTION_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).max(86_400_000).default(600_000),
  /** PostgreSQL connections per process. */
  DB_POOL_SIZE: z.coerce.number().int().min(1).max(100).default(10),
  /**
   * Every wait on PostgreSQL is bounded. Past these, the database counts as away (an outage, never a message's
   * fault): messages are held and retried, and requests answer 503 with Retry-After. A connection from the
   * pool (a new one included); one statement (cancelled by PostgreSQL); a transaction left idle.
   */
  DB_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(1_500),
  DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(10_000),
  DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: z.coerce.number().int().min(1_000).max(3_600_000).default(60_000),
  /**
   * A command handler that works this long outside its statements (waiting on something slow) is taken out of
   * the batch it came in and finished on its own, so that the batch's other replies need not wait for it.
   */
  SLOW_HANDLER_MS: z.coerce.number().int().min(10).max(60_000).default(250),
  /** Attempts at a message whose handler keeps failing, for messages without a retry policy of their own. */
  RETRY_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(5),
  /** Honour fault plans carried by orders (tests and demos only). Off: an order with a plan is refused. */
  FAULT_INJECTION: z.stringbool().default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Prometheus metrics at GET /metrics; off, every metric is a no-op and /metrics answers 404 (the bench compares the two). */
  METRICS: z.enum(['on', 'off']).default('on'),
  /**
   * Tracing takes the standard OTEL_* variables (observability/tracing.ts), and is off unless an exporter or
   * an OTLP endpoint is set. Checked here: the exporters and protocols Sagaflow ships (no gRPC).
   */
  OTEL_TRACES_EXPORTER: unsetIfEmpty(z.string().regex(/^\s*(otlp|console|none)\s*(,\s*(otlp|console|none)\s*)*$/, 'otlp, console or none')),
  OTEL_EXPORTER_OTLP_PROTOCOL: unsetIfEmpty(z.enum(['http/protobuf', 'http/json'], 'http/protobuf or http/json (gRPC is not shipped)')),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: unsetIfEmpty(z.enum(['http/protobuf', 'http/json'], 'http/protobuf or http/json (gRPC is not shipped)')),
});
export type BaseEnv = z.infer<typeof BaseEnv>;

/** The PostgreSQL timeouts of a process's settings (every pool gets them). */
export const databaseTimeouts = (env: BaseEnv) => ({
  connectMs: env.DB_CONNECT_TIMEOUT_MS,
  statementMs: env.DB_STATEMENT_TIMEOUT_MS,
  idleInTransactionMs: env.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
});

/** Parses the environment; on a bad value prints every problem by variable name and exits. */
export function loadEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const parsed = parseEnv(schema, env);
  if (parsed.ok) return parsed.data;
  process.stderr.write(`Invalid configuration:\n${parsed.problems.map((problem) => `  ${problem}\n`).join('')}`);
  process.exit(78); // EX_CONFIG
}

/** The settings, or every problem with them (`VARIABLE: what is wrong`): the schema's, then forbidden combinations. */
export function parseEnv<S extends z.ZodType>(
  schema: S,
  env: NodeJS.ProcessEnv,
): { ok: true; data: z.infer<S> } | { ok: false; problems: string[] } {
  const parsed = schema.safeParse(env);
  const problems = [
    ...(parsed.error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`) ?? []),
    ...forbiddenCombinations(env),
  ];
  return parsed.success && !problems.length ? { ok: true, data: parsed.data } : { ok: false, problems };
}

function forbiddenCombinations(env: NodeJS.ProcessEnv): string[] {
  // Fault plans crash, stall and fail services on request: a test tool that must never meet real orders.
  const faultInjection = BaseEnv.shape.FAULT_INJECTION.safeParse(env.FAULT_INJECTION).data;
  return env.NODE_ENV === 'production' && faultInjection
    ? ['FAULT_INJECTION: must not be true with NODE_ENV=production (fault plans are for tests and demos)']
    : [];
}
