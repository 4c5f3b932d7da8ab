import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FINAL_SAGA_STATUSES } from '../contracts/index.js';
import type { SagaflowSystem } from '../launcher/system.js';
import type { SagaflowClient } from './api-client.js';
import { query } from './database-admin.js';

export interface OverloadOptions {
  client: SagaflowClient;
  system: SagaflowSystem;
  /** The system's database (its admin URL): when each accepted order's saga ended is read there. */
  databaseUrl: string;
  /** How long orders are offered, open loop. */
  seconds: number;
  /** Offered orders per second; unset: `factor` × the completed rate measured first, closed loop. */
  rate?: number;
  factor?: number;
  /** The closed-loop measurement: how long, and how many orders in flight. */
  calibrateSeconds?: number;
  calibrateInFlight?: number;
  /** How long the accepted orders may take to settle once the load stops. */
  settleSeconds?: number;
  log?: (line: string) => void;
}

export interface OverloadReport {
  /** The completed rate measured closed loop (null when a rate was given), and the rate offered. */
  measuredRate: number | null;
  offeredRate: number;
  offered: number;
  /** POST /orders answers by status; those without Retry-After among 429 and 503, and any other status. */
  answers: Record<string, number>;
  refusedWithoutRetryAfter: number;
  postP50Ms: number;
  postP99Ms: number;
  accepted: number;
  confirmed: number;
  /** Accepted orders by final saga status (PENDING: not final when the settling time ran out). */
  byStatus: Record<string, number>;
  /** From POST to the saga's end, over the accepted orders that ended. */
  finalP50Ms: number;
  finalP99Ms: number;
  /** Completed per second while the load lasted. */
  completedDuringLoadPerSecond: number;
  peakRssMb: Record<string, number>;
  /** An order placed after it all (its status). */
  afterwards: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const SKUS = ['SKU-COFFEE', 'SKU-MUG', 'SKU-TEE'];

/**
 * A catalog for a system that will take a long overload (CATALOG_SEED_FILE): the demo's SKUs with stock
 * enough for any run, so that no order is cancelled for want of stock.
 */
export function overloadCatalogFile(): string {
  const file = join(mkdtempSync(join(tmpdir(), 'sagaflow-overload-')), 'catalog.json');
  writeFileSync(file, JSON.stringify(SKUS.map((sku) => ({ sku, name: sku, price: 500, currency: 'EUR', available: 1_000_000_000 }))));
  return file;
}
const percentile = (values: number[], p: number) => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};
let sequence = 0;
const order = (prefix: string) => ({ customerId: `${prefix}-${++sequence % 500}`, items: [{ sku: SKUS[sequence % 3], quantity: 1 }], paymentMethod: 'tok_visa' });

/**
 * Offers more orders than the system can finish, open loop, and reports what admission control made of
 * it: how every POST was answered and how fast, how many accepted orders confirmed and how long they took
 * from POST to final, the completed rate during the load, and each process's peak memory. A run of
 * `npm run overload` and the overload test both use it.
 */
export async function runOverload(options: OverloadOptions): Promise<OverloadReport> {
  const { client, system, databaseUrl, seconds, factor = 2, calibrateSeconds = 20, calibrateInFlight = 64, settleSeconds = 180 } = options;
  const log = options.log ?? (() => undefined);
  const measuredRate = options.rate ? null : await measureCompletedRate(client, databaseUrl, calibrateSeconds, calibrateInFlight);
  const offeredRate = options.rate ?? factor * measuredRate!;
  log(`${measuredRate === null ? '' : `completed ${measuredRate.toFixed(1)} orders/s closed loop (${calibrateInFlight} in flight); `}offering ${offeredRate.toFixed(1)}/s for ${seconds} s`);

  const answers: Record<string, number> = {};
  const postMs: number[] = [];
  const accepted = new Map<string, number>();
  let refusedWithoutRetryAfter = 0;
  const offered = Math.round(offeredRate * seconds);
  const loadStarted = Date.now();
  const endedBefore = await endedCount(databaseUrl);
  await Promise.all(
    Array.from({ length: offered }, async (_, index) => {
      await sleep(Math.max(0, loadStarted + (index / offeredRate) * 1_000 - Date.now()));
      const started = Date.now();
      const answer = await client.placeOrder(order('overload')).catch((error: Error) => ({ status: `error ${error.message}`, body: null, retryAfter: null }));
      postMs.push(Date.now() - started);
      answers[answer.status] = (answers[answer.status] ?? 0) + 1;
      if (answer.status === 202) accepted.set(answer.body.orderId, started);
      else if (!answer.retryAfter) refusedWithoutRetryAfter++;
    }),
  );
  const loadSeconds = (Date.now() - loadStarted) / 1_000;
  const completedDuringLoadPerSecond = ((await endedCount(databaseUrl)) - endedBefore) / loadSeconds;
  log(`load done in ${loadSeconds.toFixed(0)} s: answers ${JSON.stringify(answers)}; ${completedDuringLoadPerSecond.toFixed(1)} completed/s meanwhile`);

  const ids = [...accepted.keys()];
  let sagas: { key: string; status: string; ended: Date }[] = [];
  for (const deadline = Date.now() + settleSeconds * 1_000; ; await sleep(1_000)) {
    sagas = await query<{ key: string; status: string; ended: Date }>(
      databaseUrl,
      'select business_key as key, status, updated_at as ended from orchestrator.saga where business_key = any($1)',
      [ids],
    );
    if (sagas.every((saga) => FINAL_SAGA_STATUSES.includes(saga.status as never)) || Date.now() > deadline) break;
  }
  const byStatus: Record<string, number> = {};
  const finalMs: number[] = [];
  for (const saga of sagas) {
    const final = FINAL_SAGA_STATUSES.includes(saga.status as never);
    byStatus[final ? saga.status : 'PENDING'] = (byStatus[final ? saga.status : 'PENDING'] ?? 0) + 1;
    if (final) finalMs.push(saga.ended.getTime() - accepted.get(saga.key)!);
  }
  const afterwards = await client.submit(order('afterwards')).then((orderId) => client.awaitFinal(orderId, 60_000)).then((final) => final.status, (error: Error) => `failed: ${error.message}`);
  return {
    measuredRate,
    offeredRate,
    offered,
    answers,
    refusedWithoutRetryAfter,
    postP50Ms: percentile(postMs, 50),
    postP99Ms: percentile(postMs, 99),
    accepted: accepted.size,
    confirmed: byStatus.COMPLETED ?? 0,
    byStatus,
    finalP50Ms: percentile(finalMs, 50),
    finalP99Ms: percentile(finalMs, 99),
    completedDuringLoadPerSecond,
    peakRssMb: system.peakRssMb(),
    afterwards,
  };
}

/** Sagas that have ended so far. */
async function endedCount(databaseUrl: string): Promise<number> {
  const [row] = await query<{ ended: number }>(databaseUrl, `select count(*)::int as ended from orchestrator.saga where status not in ('RUNNING', 'COMPENSATING')`);
  return row.ended;
}

/**
 * Orders completed per second with `inFlight` clients, each placing an order and waiting for its end before
 * the next. The ends are read from the database for all clients at once, so that watching costs the system
 * next to nothing.
 */
async function measureCompletedRate(client: SagaflowClient, databaseUrl: string, seconds: number, inFlight: number): Promise<number> {
  const until = Date.now() + seconds * 1_000;
  const warm = Date.now() + 3_000;
  const waiting = new Map<string, () => void>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      await sleep(50);
      if (waiting.size === 0) continue;
      const ended = await query<{ key: string }>(
        databaseUrl,
        `select business_key as key from orchestrator.saga where business_key = any($1) and status not in ('RUNNING', 'COMPENSATING')`,
        [[...waiting.keys()]],
      );
      for (const { key } of ended) {
        waiting.get(key)?.();
        waiting.delete(key);
      }
    }
  })();
  let completed = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (Date.now() < until) {
        const orderId = await client.submit(order('calibrate'));
        await new Promise<void>((resolve) => waiting.set(orderId, resolve));
        if (Date.now() > warm && Date.now() < until) completed++;
      }
    }),
  );
  watching = false;
  await watcher;
  return completed / (seconds - 3);
}
