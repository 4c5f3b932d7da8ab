// Every dependency failure is an outage, never a message's fault: PostgreSQL read-only, a statement timeout,
// a database host that no longer resolves, PostgreSQL stopped, RabbitMQ stopped or in a memory alarm. Meanwhile POST /orders
// answers 503 with Retry-After within 2 s (202 within 1 s while only the broker is away: the saga row is the
// outbox), no message is dead-lettered, and every order confirms once the dependency is back. On a system
// of the suite's own whose processes reach PostgreSQL by a name this suite can make unresolvable.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqplib from 'amqplib';
import pg from 'pg';
import { eventually, query, sampleSum, scrape, terminateBackends } from '../../shared/src/testkit/index.js';
import { buildTopology } from '../../shared/src/topology/topology.js';
import { type SuiteSystem, startSuiteSystem } from './suite-system.js';

const DB_HOST = 'sagaflow-db.test';
const dnsDir = mkdtempSync(join(tmpdir(), 'sagaflow-dns-'));
const DNS_DOWN = join(dnsDir, 'down');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let suite: SuiteSystem;
let databaseUrl: string;
let placed = 0;

beforeAll(async () => {
  process.env.SAGAFLOW_TEST_DNS_NAME = DB_HOST;
  process.env.SAGAFLOW_TEST_DNS_DOWN = DNS_DOWN;
  suite = await startSuiteSystem(
    'dependencies',
    // A short statement timeout, so that a statement stuck behind a lock is given up within the 2 s.
    { DB_STATEMENT_TIMEOUT_MS: '1000', SAGAFLOW_TEST_DNS_NAME: DB_HOST, SAGAFLOW_TEST_DNS_DOWN: DNS_DOWN },
    { nodeFlags: [`--import=${fileURLToPath(new URL('../fixtures/switchable-dns.mjs', import.meta.url))}`], databaseHost: DB_HOST },
  );
  databaseUrl = suite.isolated.environment.databaseUrl;
}, 120_000);

afterAll(async () => {
  rmSync(dnsDir, { recursive: true, force: true });
  await suite?.dispose();
}, 60_000);

const order = () => ({ customerId: `dependencies-${++placed}`, items: [{ sku: 'SKU-MUG', quantity: 1 }], paymentMethod: 'tok_visa' });

/** Messages in every .dlq of the suite's vhost, counted by the broker now (once it answers again). */
function deadLetters(): Promise<number> {
  const queues = buildTopology().queues.filter((queue) => queue.role === 'dead-letter').map((queue) => queue.name);
  return eventually(
    async () => {
      const connection = await amqplib.connect(suite.isolated.environment.amqpUrl);
      connection.on('error', () => undefined);
      try {
        const channel = await connection.createChannel();
        let count = 0;
        for (const queue of queues) count += (await channel.checkQueue(queue)).messageCount;
        return count;
      } finally {
        await connection.close().catch(() => undefined);
      }
    },
    { timeoutMs: 60_000, what: 'the broker to count the dead letters' },
  );
}

/** POST /orders, timed. */
async function post() {
  const started = Date.now();
  const answer = await suite.isolated.client.placeOrder(order());
  return { ...answer, ms: Date.now() - started };
}

/**
 * Orders in flight when `fail` strikes, a POST during the failure (`during` checks its answer, `whileFailed`
 * looks around), the failure held for `holdMs`, then `heal`: every order confirms and nothing was dead-lettered.
 */
async function outage({
  fail,
  heal,
  holdMs,
  during,
  whileFailed,
}: {
  fail: () => Promise<void>;
  heal: () => Promise<void>;
  holdMs: number;
  during: (answer: Awaited<ReturnType<typeof post>>) => void;
  whileFailed?: () => Promise<void>;
}) {
  const { client } = suite.isolated;
  const lettersBefore = await deadLetters();
  const inFlight = await Promise.all(Array.from({ length: 5 }, () => client.submit(order())));
  await fail();
  let healed = false;
  try {
    const answer = await post();
    during(answer);
    if (answer.status === 202) inFlight.push(answer.body.orderId);
    await whileFailed?.();
    await sleep(holdMs);
  } finally {
    await heal();
    healed = true;
  }
  expect(healed).toBe(true);
  const orders = [];
  for (const orderId of inFlight) orders.push(await client.awaitFinal(orderId, 120_000));
  expect(orders.map((one) => `${one.orderId}: ${one.status} ${one.failureReason ?? ''}`.trim())).toEqual(orders.map((one) => `${one.orderId}: CONFIRMED`));
  expect(await deadLetters()).toBe(lettersBefore);
}

const unavailable = (answer: Awaited<ReturnType<typeof post>>) => {
  expect({ status: answer.status, retryAfter: answer.retryAfter !== null, fast: answer.ms < 2_000 }).toEqual({ status: 503, retryAfter: true, fast: true });
};

test('PostgreSQL read-only: 503 with Retry-After, messages held, every order confirms afterwards', async () => {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
  // Altered from another database: a session of this one is read-only once it is.
  const maintenance = Object.assign(new URL(databaseUrl), { pathname: '/postgres' }).toString();
  await outage({
    fail: async () => {
      await query(maintenance, `alter database "${name}" set default_transaction_read_only = on`);
      await terminateBackends(databaseUrl);
    },
    heal: async () => {
      await query(maintenance, `alter database "${name}" reset default_transaction_read_only`);
      await terminateBackends(databaseUrl);
    },
    holdMs: 5_000,
    during: unavailable,
  });
}, 180_000);

test('a statement timeout (tables locked): 503 with Retry-After, messages held, every order confirms afterwards', async () => {
  const locker = new pg.Client({ connectionString: databaseUrl });
  locker.on('error', () => undefined);
  await locker.connect();
  await outage({
    fail: async () => {
      await locker.query('begin');
      await locker.query('lock table orchestrator.saga, payment.payment, inventory.stock_item in access exclusive mode');
    },
    heal: async () => {
      await locker.query('rollback');
      await locker.end();
    },
    holdMs: 5_000,
    during: unavailable,
  });
}, 180_000);

test('the database host no longer resolves: 503 with Retry-After, messages held, every order confirms afterwards', async () => {
  await outage({
    fail: async () => {
      writeFileSync(DNS_DOWN, '');
      await terminateBackends(databaseUrl);
    },
    heal: async () => rmSync(DNS_DOWN, { force: true }),
    holdMs: 5_000,
    during: unavailable,
  });
}, 180_000);

test('PostgreSQL stopped for 60 s: 503 with Retry-After, messages held, every order confirms afterwards', async () => {
  const cluster = ['--skip-systemctl-redirect', execFileSync('ls', ['/etc/postgresql']).toString().trim().split('\n')[0], 'main'];
  await outage({
    fail: async () => void execFileSync('pg_ctlcluster', [...cluster, 'stop', '-m', 'fast'], { stdio: 'ignore' }),
    heal: async () => {
      execFileSync('pg_ctlcluster', [...cluster, 'start'], { stdio: 'ignore' });
      for (let tries = 0; tries < 60; tries++) {
        try {
          execFileSync('pg_isready', ['-h', '127.0.0.1', '-p', '5432', '-q']);
          return;
        } catch {
          await sleep(500);
        }
      }
    },
    holdMs: 60_000,
    during: unavailable,
  });
}, 300_000);

test('RabbitMQ stopped for 60 s: POST answers 202 within 1 s (the saga row is the outbox), every order confirms afterwards', async () => {
  await outage({
    fail: async () => void execFileSync('rabbitmqctl', ['stop_app'], { stdio: 'ignore' }),
    heal: async () => void execFileSync('rabbitmqctl', ['start_app'], { stdio: 'ignore' }),
    holdMs: 60_000,
    during: (answer) => expect({ status: answer.status, fast: answer.ms < 1_000 }).toEqual({ status: 202, fast: true }),
    // A read that needs a service answers 503 within QUERY_TIMEOUT_MS (5 s), not when the broker returns.
    whileFailed: async () => {
      const started = Date.now();
      const response = await suite.isolated.client.fetch(`/payments?orderId=${randomUUID()}`);
      expect({ status: response.status, retryAfter: response.headers.has('retry-after'), fast: Date.now() - started < 6_000 }).toEqual({ status: 503, retryAfter: true, fast: true });
    },
  });
}, 300_000);

test('a RabbitMQ memory alarm blocks publishing only: logged and exported, consumption goes on, every order confirms afterwards', async () => {
  const { system, environment } = suite.isolated;
  const blockedGauge = async (connection: string) => sampleSum(await scrape(system.url('orchestrator')), 'sagaflow_broker_blocked', { connection });
  await outage({
    fail: async () => void execFileSync('rabbitmqctl', ['set_vm_memory_high_watermark', '0.000001'], { stdio: 'ignore' }),
    heal: async () => void execFileSync('rabbitmqctl', ['set_vm_memory_high_watermark', '0.4'], { stdio: 'ignore' }),
    holdMs: 0,
    during: (answer) => expect({ status: answer.status, fast: answer.ms < 1_000 }).toEqual({ status: 202, fast: true }),
    whileFailed: async () => {
      // The orchestrator tried to publish that order's first command: its publishing connection is blocked...
      await eventually(async () => ((await blockedGauge('publish')) === 1 ? true : undefined), { timeoutMs: 20_000, what: 'the publish connection reported blocked' });
      expect(await blockedGauge('consume')).toBe(0);
      // ... and RabbitMQ never blocks the connections that only consume.
      const consuming = await eventually(
        async () => {
          const connections = await environment.admin.connections(environment.vhost);
          const listed = connections.filter((connection) => / \(consume\)$/.test(connection.client_properties?.connection_name ?? '') && connection.state);
          return listed.length >= 5 ? listed : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 500, what: 'the five consuming connections listed with their state' },
      );
      expect(consuming.filter((connection) => connection.state === 'blocked').map((connection) => connection.client_properties?.connection_name)).toEqual([]);
    },
  });
  await eventually(async () => ((await blockedGauge('publish')) === 0 ? true : undefined), { timeoutMs: 20_000, what: 'the publish connection unblocked' });
}, 180_000);
