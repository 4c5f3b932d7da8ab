import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { BUNDLE_TYPE } from '../messaging/bundle.js';
import { COMMANDS, QUERIES } from '../contracts/index.js';
import { replyType } from '../contracts/replies.js';

/**
 * Every Prometheus metric of Sagaflow, by name: the one place they are defined. Each process serves them at
 * GET /metrics (see metrics.controller.ts). METRICS=off turns every one into a no-op, for the bench's A/B.
 *
 * The per-message counters are plain numbers bound once to their labels (a queue and a message type) and
 * handed to prom-client only when scraped: the hot path pays an addition, no label hashing, no allocation.
 * Histograms go through prom-client's label children: one observation per reply, request or saga.
 */
export const registry = new Registry();
/** The orchestrator's timer and outbox metrics: served only where registerOrchestratorMetrics was called. */
const orchestratorRegistry = new Registry();
const served = [registry];
let enabled = true;

/** Turns metrics on or off (METRICS) and names the process in every series; call before binding any. */
export function configureMetrics({ on, service }: { on: boolean; service: string }): void {
  enabled = on;
  registry.setDefaultLabels({ service });
  orchestratorRegistry.setDefaultLabels({ service });
  // Process metrics (CPU, memory, event-loop lag, GC, handles) under the same prefix as ours.
  if (on) collectDefaultMetrics({ register: registry, prefix: 'sagaflow_' });
}

export const metricsEnabled = (): boolean => enabled;

/** A counter bound to its labels: `inc()` adds to a number that the next scrape reads. */
export interface BoundCounter {
  inc(by?: number): void;
}
export interface BoundHistogram {
  observe(value: number): void;
}
const NOOP: BoundCounter & BoundHistogram = { inc() {}, observe() {} };

class Cell implements BoundCounter {
  value = 0;
  constructor(readonly labels: Record<string, string>) {}
  inc(by = 1): void {
    this.value += by;
  }
}

/** A counter whose series are bound once (see BoundCounter); prom-client renders them on scrape. */
class CounterFamily<L extends string> {
  private readonly cells = new Map<string, Cell>();

  constructor(name: string, help: string, private readonly labelNames: readonly L[]) {
    const cells = this.cells;
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const cell of cells.values()) this.inc(cell.labels as Partial<Record<L, string>>, cell.value);
      },
    });
  }

  /** The series for these label values (the same one every time they are asked for). */
  bind(...values: string[]): BoundCounter {
    if (!enabled) return NOOP;
    const key = values.length === 1 ? values[0] : values.join('\u0000');
    let cell = this.cells.get(key);
    if (!cell) this.cells.set(key, (cell = new Cell(Object.fromEntries(this.labelNames.map((name, index) => [name, values[index]])))));
    return cell;
  }
}

class HistogramFamily<L extends string> {
  readonly histogram: Histogram<L>;
  private readonly children = new Map<string, BoundHistogram>();

  constructor(name: string, help: string, labelNames: readonly L[], buckets: number[], registers = [registry]) {
    this.histogram = new Histogram({ name, help, labelNames, buckets, registers });
  }

  bind(...values: string[]): BoundHistogram {
    if (!enabled) return NOOP;
    const key = values.length === 1 ? values[0] : values.join('\u0000');
    let child = this.children.get(key);
    if (!child) this.children.set(key, (child = this.histogram.labels(...values)));
    return child;
  }
}

const SECONDS_FAST = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];
const SECONDS_SLOW = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

// ---- sagas (orchestrator) ----------------------------------------------------------------------------
export const SAGAS_STARTED = new CounterFamily('sagaflow_sagas_started_total', 'Sagas started, by saga type', ['type']);
export const SAGAS_ENDED = new CounterFamily('sagaflow_sagas_ended_total', 'Sagas that reached a final status (COMPLETED, COMPENSATED, FAILED, COMPENSATION_FAILED)', ['type', 'status']);
export const SAGA_DURATION = new HistogramFamily('sagaflow_saga_duration_seconds', 'From a saga\'s start to its final status', ['type', 'status'], SECONDS_SLOW);
export const STEP_DURATION = new HistogramFamily(
  'sagaflow_step_duration_seconds',
  'A step\'s command until its reply was applied: an invoke from the step\'s start (its retries included), a compensation from its last send',
  ['type', 'step', 'action', 'outcome'],
  SECONDS_FAST,
);
export const STEP_QUEUE_WAIT = new HistogramFamily(
  'sagaflow_step_queue_wait_seconds',
  'How long a step\'s command waited in its queue before the participant first took it (from the reply)',
  ['type', 'step', 'action'],
  SECONDS_SLOW,
);
export const STEP_WORK = new HistogramFamily(
  'sagaflow_step_work_seconds',
  'How long the participant worked on a step\'s command, its retries included (from the reply)',
  ['type', 'step', 'action'],
  SECONDS_FAST,
);
export const VERSION_CONFLICTS = new CounterFamily('sagaflow_saga_version_conflicts_total', 'Saga saves refused by the optimistic lock (the saga moved meanwhile); the replies are decided again', ['type']);
// Without labels these would show a series on every process: registered by the orchestrator only (see below).
export const TIMER_LAG = new HistogramFamily(
  'sagaflow_timer_lag_seconds',
  'How late a due saga timer was fired (claimed by the timer poll)',
  [],
  [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  [orchestratorRegistry],
);

let outboxBacklog: (() => Promise<{ rows: number; oldestAgeSeconds: number }>) | undefined;
/** One read per scrape for both outbox gauges. */
let backlogRead: Promise<{ rows: number; oldestAgeSeconds: number } | null> | undefined;
const readBacklog = () =>
  (backlogRead ??= (outboxBacklog?.() ?? Promise.resolve(null))
    .catch(() => null)
    .finally(() => setTimeout(() => (backlogRead = undefined), 1_000).unref()));

/** A gauge of the outbox backlog, read on scrape (NaN when it cannot be read: the database is away). */
const backlogGauge = (name: string, help: string, value: (backlog: { rows: number; oldestAgeSeconds: number }) => number) =>
  new Gauge({
    name,
    help,
    registers: [orchestratorRegistry],
    async collect() {
      const backlog = await readBacklog();
      this.set(backlog ? value(backlog) : Number.NaN);
    },
  });
backlogGauge(
  'sagaflow_outbox_backlog',
  'Sagas whose timer is due and not yet fired: an awaited command to send (after a back-off, or never confirmed) or a timeout to fire. The saga row is the outbox',
  (backlog) => backlog.rows,
);
backlogGauge('sagaflow_outbox_backlog_oldest_seconds', 'How long the oldest due saga timer has been waiting (0 when none is due)', (backlog) => backlog.oldestAgeSeconds);

/** Serves the orchestrator's timer and outbox metrics; `read` gives its outbox backlog (a cheap query), on each scrape. */
export function registerOrchestratorMetrics(read: () => Promise<{ rows: number; oldestAgeSeconds: number }>): void {
  outboxBacklog = read;
  if (!served.includes(orchestratorRegistry)) served.push(orchestratorRegistry);
}

/** The name of every metric a process may serve (for the checks of the dashboard). */
export const definedMetricNames = (): string[] => [registry, orchestratorRegistry].flatMap((each) => each.getMetricsAsArray().map((metric) => metric.name));

// ---- messages (every process) ------------------------------------------------------------------------
export const MESSAGES_CONSUMED = new CounterFamily('sagaflow_messages_consumed_total', 'Messages taken from a queue (a bundle\'s parts one by one), by queue and type', ['queue', 'type']);
export const MESSAGES_PUBLISHED = new CounterFamily('sagaflow_messages_published_total', 'Messages published and confirmed by the broker (a bundle\'s parts one by one), by exchange and type', ['exchange', 'type']);
export const MESSAGES_RETRIED = new CounterFamily('sagaflow_messages_retried_total', 'Messages parked in a delay queue for another attempt after their handler failed, by queue and type', ['queue', 'type']);
export const MESSAGES_DEAD_LETTERED = new CounterFamily('sagaflow_messages_dead_lettered_total', 'Messages moved to their queue\'s .dlq, by queue, type and reason', ['queue', 'type', 'reason']);
export const INBOX_DUPLICATES = new CounterFamily('sagaflow_inbox_duplicates_total', 'Commands the inbox had processed before, answered again with their stored reply, by type', ['type']);

// ---- the broker link (every process) ----------------------------------------------------------------
export const BROKER_BLOCKS = new CounterFamily('sagaflow_broker_blocked_total', 'Times RabbitMQ blocked a connection of this process (a memory or disk alarm: it stops taking publishes), by connection', ['connection']);
const blocked = new Set<string>();
new Gauge({
  name: 'sagaflow_broker_blocked',
  help: 'Connections of this process that RabbitMQ blocks now (publishing waits; consuming goes on, on its own connection)',
  labelNames: ['connection'],
  registers: [registry],
  collect() {
    this.reset();
    for (const connection of ['consume', 'publish']) this.set({ connection }, blocked.has(connection) ? 1 : 0);
  },
});
/** RabbitMQ blocked (true) or unblocked (false) one of this process's connections. */
export function observeBlocked(connection: string, isBlocked: boolean): void {
  if (isBlocked) {
    blocked.add(connection);
    BROKER_BLOCKS.bind(connection).inc();
  } else blocked.delete(connection);
}

// ---- HTTP (every process) ----------------------------------------------------------------------------
export const HTTP_REQUESTS = new CounterFamily('sagaflow_http_requests_total', 'HTTP requests answered, by method, route (its pattern, e.g. /orders/:id) and status', ['method', 'route', 'status']);
export const HTTP_DURATION = new HistogramFamily('sagaflow_http_request_duration_seconds', 'HTTP request duration, by method and route', ['method', 'route'], SECONDS_FAST);

/**
 * A message type as a label: the types the contracts define, else `unknown` (anything can arrive on a queue,
 * and a label per stranger would grow without end).
 */
const KNOWN_TYPES = new Set<string>([
  BUNDLE_TYPE,
  ...QUERIES.keys(),
  ...[...COMMANDS.values()].flatMap((command) => [command.type, replyType(command, 'succeeded'), replyType(command, 'failed')]),
]);
export const typeLabel = (type: unknown): string => (typeof type === 'string' && KNOWN_TYPES.has(type) ? type : 'unknown');

/** Series bound per message type, for one queue or exchange: a map lookup per message once bound. */
export class PerType {
  private readonly bound = new Map<unknown, BoundCounter>();
  constructor(private readonly bind: (type: string) => BoundCounter) {}

  of(type: unknown): BoundCounter {
    let counter = this.bound.get(type);
    if (!counter) {
      counter = this.bind(typeLabel(type));
      // Only known types are remembered: strangers share `unknown` without adding an entry each.
      if (typeLabel(type) !== 'unknown') this.bound.set(type, counter);
    }
    return counter;
  }
}

/** The text Prometheus scrapes. */
export const renderMetrics = async (): Promise<string> => (await Promise.all(served.map((each) => each.metrics()))).join('\n');
export const METRICS_CONTENT_TYPE = registry.contentType;
