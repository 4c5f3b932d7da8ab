// `npm run bench`: sagas/s, latency, CPU split and memory of Sagaflow against the bare amqplib+pg saga
// (../shared/bench/bare-saga.mjs) at the same levels, in one run. A closed loop per level: C clients each
// POST /orders, wait for the saga's end (PostgreSQL NOTIFY, no polling), and POST again.
//
//   npm run bench -- --levels 1,16,64,256 --secs 15 --warmup 3 --decline 0.1 --instances 1
//   options: --levels list (1,16,64,256)  --secs per level (15)  --warmup s (3)  --decline share (0.1)
//            --instances N: N of each process, side by side (1)  --no-bare: skip the reference
//            --cluster N: ours on a local cluster of N RabbitMQ nodes with quorum queues (docs/scaling.md; bare
//            stays on the machine's node, so compare ours with ours: --no-bare)
//            --bare-modes multi,single: which layouts of the reference to run (both; multi is the headline)
//            --target URL --database URL [--token KEY]: drive a system already running instead of starting one
//            (KEY: a client API key or JWT of that system)
//            --bare-dir: where bare-saga.mjs is (../shared/bench beside the repository, or $BARE_BENCH_DIR)
//            --out dir (bench-results)  --log-level (info)
//            --cpu-prof dir: profile every process (node --cpu-prof); summarise with scripts/profile-summary.mjs
//            --heap-sample dir: sample what every process allocates in each level's window (scripts/heap-sample.mjs);
//            summarise with scripts/profile-summary.mjs <file> --sagas N (the window's sagas, in dir/window-C<level>.json)
//            --metrics on|off (on)  --tracing off|on (off: on exports every span over OTLP to a sink in this process)
//            --budget: the work budget only (ours at 1 and 64 in flight, 10 s each after a 12 s warm-up, no
//            reference): per-saga counts checked against --budget-file (bench/budget.json); exits 1 when one
//            passes it by more than 10%
//            --write-budget: the same, --rounds times (5), writing each count's highest as the new budget (a
//            commit of its own) and showing the spread
//            --variants default,metrics-off,tracing[,tracing+metrics-off]: ours once per variant at each level,
//            side by side, --rounds N times (1; every other round in reverse order), to compare what metrics and
//            tracing cost (docs/performance.md)
// Latency is from the saga row's created_at (the POST) to its updated_at at the end: times the system
// records. The reference runs twice: --mode=multi (a process per participant, laid out like Sagaflow: the
// headline ratio) and --mode=single (all in one process). Level by level, ours (a fresh system) runs, then
// bare-multi, then bare-single, so that the host's drifting speed hits all three alike. Each level also
// gets a ledger: what one saga cost in statements, commits, rows, WAL, messages and CPU, for ours and for
// both layouts of the reference.
// Output: a markdown table on stdout and <out>/bench-<time>.{json,md}.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { BUDGET_LEVELS, budgetCounts, budgetTable, checkBudget, highestOfRuns, spreadTable } from './bench-budget.mjs';
import { FINAL_SAGA_STATUSES, SAGA_ENDED_CHANNEL } from '../shared/dist/contracts/index.js';
import { LocalRabbitCluster, seededRandom, startIsolatedSystem } from '../shared/dist/testkit/index.js';

const { values: options } = parseArgs({
  options: {
    levels: { type: 'string' },
    secs: { type: 'string' },
    warmup: { type: 'string' },
    decline: { type: 'string', default: '0.1' },
    instances: { type: 'string', default: '1' },
    cluster: { type: 'string', default: '0' },
    'no-bare': { type: 'boolean', default: false },
    'bare-modes': { type: 'string', default: 'multi,single' },
    'bare-dir': { type: 'string' },
    target: { type: 'string' },
    token: { type: 'string' },
    database: { type: 'string' },
    out: { type: 'string', default: 'bench-results' },
    'log-level': { type: 'string', default: 'info' },
    'cpu-prof': { type: 'string' },
    'heap-sample': { type: 'string' },
    metrics: { type: 'string', default: 'on' },
    tracing: { type: 'string', default: 'off' },
    variants: { type: 'string' },
    rounds: { type: 'string' },
    budget: { type: 'boolean', default: false },
    'write-budget': { type: 'boolean', default: false },
    'budget-file': { type: 'string', default: 'bench/budget.json' },
  },
});
const BUDGET = options.budget || options['write-budget'];
const LEVELS = BUDGET ? Object.keys(BUDGET_LEVELS).map(Number) : (options.levels ?? '1,16,64,256').split(',').map(Number);
const SECS = Number(options.secs ?? (BUDGET ? 10 : 15));
// PostgreSQL flushes an idle backend's statistics up to 10 s late: a budget run waits for the start-up's
// (the catalog seeded) to land before its window opens, or they count as the first level's work.
const WARMUP = Number(options.warmup ?? (BUDGET ? 12 : 3));
const DECLINE = Number(options.decline);
const INSTANCES = Number(options.instances);
const CLUSTER_NODES = Number(options.cluster);
const HEAP_SAMPLE_DIR = options['heap-sample'] ? resolvePath(options['heap-sample']) : null;
if (HEAP_SAMPLE_DIR) mkdirSync(HEAP_SAMPLE_DIR, { recursive: true });
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BARE_DIR = options['bare-dir'] ?? process.env.BARE_BENCH_DIR ?? join(ROOT, '..', 'shared', 'bench');
const BARE_MODES = options['no-bare'] || BUDGET ? [] : options['bare-modes'].split(',').map((mode) => mode.trim()).filter(Boolean);
if (BARE_MODES.some((mode) => !['multi', 'single'].includes(mode))) {
  console.error(`--bare-modes takes multi and/or single (comma-separated), not "${options['bare-modes']}".`);
  process.exit(2);
}
if (BARE_MODES.length && !existsSync(join(BARE_DIR, 'bare-saga.mjs'))) {
  console.error(`The bare reference is not at ${BARE_DIR}/bare-saga.mjs: pass --bare-dir <folder> (or BARE_BENCH_DIR), or --no-bare.`);
  process.exit(2);
}
/** How ours runs: metrics on or off, tracing exporting or off. Several compare them, level by level. */
const singleVariant = [options.tracing === 'on' && 'tracing', options.metrics === 'off' && 'metrics-off'].filter(Boolean).join('+') || 'default';
const VARIANTS = (options.variants ?? singleVariant)
  .split(',')
  .map((name) => name.trim())
  .filter(Boolean)
  .map((name) => {
    const parts = name.split('+');
    if (parts.some((part) => !['default', 'metrics-off', 'tracing'].includes(part))) {
      console.error(`--variants takes default, metrics-off, tracing or tracing+metrics-off (comma-separated), not "${name}".`);
      process.exit(2);
    }
    return { name, metricsOff: parts.includes('metrics-off'), tracing: parts.includes('tracing') };
  });
const ROUNDS = Number(options.rounds ?? (options['write-budget'] ? 5 : 1));
const SKUS = Array.from({ length: 100 }, (_, index) => `SKU-BENCH-${index}`);
// Sagaflow's schemas in its database, and those of them with an inbox (the participants).
const OUR_SCHEMAS = ['orchestrator', 'order', 'inventory', 'payment', 'notification'];
const OUR_INBOXES = ['order', 'inventory', 'payment', 'notification'].map((schema) => `"${schema}".inbox`);
const BARE_POLL_MS = 200;
// About 0.6 × --secs: ends well inside bare's own measured window, before it drains and drops the schema.
// Whole seconds: bare's backends start together and so flush their pg_stat counts in step, about once a
// second; a window of n.6 s would end 0.6 s further into that cycle than it began and miss that much work.
const BARE_WINDOW_S = Math.max(1, Math.round(0.6 * SECS));

const log = (line) => process.stderr.write(`${line}\n`);
const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const ratio = (ours, reference) => (Number.isFinite(ours / reference) ? `${(ours / reference).toFixed(2)}×` : '-');

// ---- the system under test --------------------------------------------------------------------------
/**
 * Where a tracing variant exports: an OTLP/HTTP receiver in this process that takes every batch of spans
 * (protobuf, the default protocol) and drops it, as a collector would take it off the processes' hands.
 */
async function traceSink() {
  const received = { requests: 0, bytes: 0 };
  const server = http.createServer((request, response) => {
    request.on('data', (chunk) => (received.bytes += chunk.length));
    request.on('end', () => {
      received.requests++;
      response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { endpoint: `http://127.0.0.1:${server.address().port}`, received, close: () => new Promise((resolve) => server.close(resolve)) };
}
const sink = VARIANTS.some((variant) => variant.tracing) ? await traceSink() : null;

/** The environment of a variant's processes. */
const variantEnv = (variant) => ({
  METRICS: variant.metricsOff ? 'off' : 'on',
  ...(variant.tracing ? { OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint, OTEL_TRACES_EXPORTER: 'otlp' } : { OTEL_TRACES_EXPORTER: 'none' }),
});

/** The local RabbitMQ cluster ours runs on with --cluster, started once for every level. */
let cluster = null;

async function startSystem(variant) {
  if (options.target) {
    if (!options.database) throw new Error('--target needs --database (the orchestrator database, for LISTEN and timestamps)');
    return { url: options.target, token: options.token, databaseUrl: options.database, pids: () => [], dispose: async () => {} };
  }
  const seedFile = join(mkdtempSync(join(tmpdir(), 'sagaflow-bench-')), 'catalog.json');
  writeFileSync(seedFile, JSON.stringify(SKUS.map((sku) => ({ sku, name: sku, price: 500, currency: 'EUR', available: 1_000_000_000 }))));
  if (CLUSTER_NODES && !cluster) {
    cluster = new LocalRabbitCluster({ nodes: CLUSTER_NODES, basePort: 5600, prefix: 'sagaflow-bench' });
    await cluster.start();
    log(`RabbitMQ cluster up: ${cluster.nodes.map((node) => node.name).join(', ')}`);
  }
  const started = await startIsolatedSystem({
    prefix: 'sagaflow_bench',
    rootDir: ROOT,
    logDir: join(resolvePath(ROOT, options.out), 'logs', '{vhost}'),
    instances: INSTANCES,
    nodeFlags: [
      ...(options['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${options['cpu-prof']}`] : []),
      ...(HEAP_SAMPLE_DIR ? [`--import=${pathToFileURL(join(ROOT, 'scripts', 'heap-sample.mjs'))}`] : []),
    ],
    env: { ...(HEAP_SAMPLE_DIR ? { SAGAFLOW_HEAP_SAMPLE_DIR: HEAP_SAMPLE_DIR } : {}), CATALOG_SEED_FILE: seedFile, LOG_LEVEL: options['log-level'], ...variantEnv(variant), ...(cluster ? { QUEUE_TYPE: 'quorum' } : {}) },
    broker: cluster?.endpoints,
  });
  log(`system up on vhost ${started.environment.vhost} (logs in ${started.logDir})`);
  return {
    url: started.system.url(),
    urls: started.system.urls(),
    token: started.apiKeys.client,
    databaseUrl: started.environment.databaseUrl,
    pids: () => started.system.pids(),
    dispose: () => started.dispose(),
  };
}

// ---- the closed loop --------------------------------------------------------------------------------
/** Resolves each order's wait when its saga-ended notification arrives. */
function endWatcher(client) {
  const waiting = new Map();
  const early = new Set(); // ended before its POST returned
  client.on('notification', ({ payload }) => {
    const { businessKey } = JSON.parse(payload);
    const resolve = waiting.get(businessKey);
    if (resolve) {
      waiting.delete(businessKey);
      resolve();
    } else early.add(businessKey);
  });
  return (orderId) => {
    if (early.delete(orderId)) return Promise.resolve();
    return new Promise((resolve) => waiting.set(orderId, resolve));
  };
}

// The driver shares the two cores with what it measures: node:http on kept-alive sockets costs it a
// fraction of fetch's CPU per request. An agent per level: a socket kept from an earlier level's system
// could meet a new system on the same port and be reset.
function post(agent, url, body, token) {
  const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(token ? { authorization: `Bearer ${token}` } : {}) };
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', agent, headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode, text }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

async function runLevel(system, db, statements, waitForEnd, concurrency, random) {
  const urls = system.urls ?? [system.url];
  let running = true;
  let failures = 0;
  const agent = new http.Agent({ keepAlive: true });
  const client = async (index) => {
    const url = urls[index % urls.length];
    while (running) {
      const body = {
        customerId: `bench-${index}`,
        items: [{ sku: SKUS[Math.floor(random() * SKUS.length)], quantity: 1 }],
        paymentMethod: random() < DECLINE ? 'tok_chargeDeclined' : 'tok_visa',
      };
      const response = await post(agent, `${url}/orders`, JSON.stringify(body), system.token).catch((error) => ({ status: 0, text: error.message }));
      if (response.status !== 202) {
        if (failures++ === 0) log(`C=${concurrency}: a POST failed (${response.status || 'no answer'}: ${response.text.slice(0, 200)}); failures are counted as refusedPosts`);
        await sleep(100);
        continue;
      }
      const { orderId } = JSON.parse(response.text);
      await waitForEnd(orderId);
    }
  };
  const clients = Array.from({ length: concurrency }, (_, index) => client(index));
  await sleep(WARMUP * 1000);
  const ours = new Map(system.pids().map((pid) => [pid, processName(pid)]));
  // --heap-sample: each process samples its allocations from one SIGUSR2 to the next (scripts/heap-sample.mjs).
  const toggleHeapSampling = () => HEAP_SAMPLE_DIR && [...ours.keys()].forEach((pid) => process.kill(pid, 'SIGUSR2'));
  toggleHeapSampling();
  const cpuBefore = snapshot();
  const pgBefore = await pgSnapshot(db, { schemas: OUR_SCHEMAS, statements });
  await sleep(SECS * 1000);
  const cpuAfter = snapshot();
  const pgAfter = await pgSnapshot(db, { schemas: OUR_SCHEMAS, statements, inboxes: OUR_INBOXES, since: pgBefore.at });
  toggleHeapSampling();
  const [windowStart, windowEnd] = [pgBefore.at, pgAfter.at];
  running = false;
  await Promise.all(clients);
  agent.destroy();
  const { rows } = await db.query(
    `select status, extract(epoch from (updated_at - created_at)) * 1000 as ms from orchestrator.saga
     where updated_at >= $1 and updated_at < $2 and status = any($3)`,
    [windowStart, windowEnd, FINAL_SAGA_STATUSES],
  );
  const latencies = rows.map((row) => Number(row.ms)).sort((a, b) => a - b);
  const seconds = (windowEnd - windowStart) / 1000;
  const cpu = cpuUsed(cpuBefore, cpuAfter, ours);
  const percent = cpuPercent(cpu, ['rabbitmq', 'postgres', 'app', 'driver', 'other']);
  const split = { rabbitmq: percent.rabbitmq, postgres: percent.postgres, sagaflow: percent.app, driver: percent.driver, other: percent.other };
  Object.assign(split, { perProcess: cpuPercent(cpu, Object.keys(cpu.byProcess), cpu.byProcess), idle: cpu.idle / cpu.seconds, steal: cpu.steal / cpu.seconds });
  const ledger = ledgerOf(pgBefore, pgAfter, rows.length, cpu);
  if (HEAP_SAMPLE_DIR) {
    writeFileSync(join(HEAP_SAMPLE_DIR, `window-C${concurrency}.json`), JSON.stringify({ sagas: rows.length, processes: Object.fromEntries(ours) }, null, 2));
    log(`C=${concurrency}: heap samples in ${HEAP_SAMPLE_DIR}/<pid>.heapprofile, ${rows.length} sagas in the window (${[...ours.values()].join(', ')})`);
  }
  return {
    concurrency,
    sagasPerSecond: rows.length / seconds,
    completed: rows.filter((row) => row.status === 'COMPLETED').length,
    compensated: rows.filter((row) => row.status === 'COMPENSATED').length,
    other: rows.filter((row) => !['COMPLETED', 'COMPENSATED'].includes(row.status)).length,
    refusedPosts: failures,
    latencyMs: { p50: pct(latencies, 50), p95: pct(latencies, 95), p99: pct(latencies, 99) },
    cpuPercentOfOneCore: split,
    cpuMsPerSaga: { rabbitmq: ledger.cpuMs.rabbitmq, postgres: ledger.cpuMs.postgres, sagaflow: ledger.cpuMs.app, driver: ledger.cpuMs.driver },
    // What PostgreSQL had to do per saga: its CPU follows these more than the statement count.
    pgPerSaga: { commits: ledger.commits, rowsWritten: ledger.rowsWritten, walKb: ledger.walKb },
    ledger,
  };
}

// ---- the ledger: what one saga cost, over a window --------------------------------------------------
/**
 * Creates pg_stat_statements in the database measured; true when it can be read (it only counts when the
 * library is in shared_preload_libraries, else reading it fails). Its counts are per database (dbid).
 */
async function enableStatements(db) {
  try {
    await db.query('create extension if not exists pg_stat_statements');
    await db.query('select calls from pg_stat_statements limit 1');
    return true;
  } catch (error) {
    log(`pg_stat_statements: ${error.message}; statements per saga will be n/a`);
    return false;
  }
}

/**
 * What PostgreSQL has done so far in the database of `db`, in ONE statement: that costs one commit and one
 * statement of ours per snapshot (noise next to hundreds of sagas), and reads fresh statistics (with
 * stats_fetch_consistency = cache they are cached per transaction, so a transaction of its own needs no
 * pg_stat_clear_snapshot()). `finished` counts the ended sagas of a table; with `since`, `inboxRows` counts
 * the inbox rows processed from then on.
 * Caveat: backends flush their counts to pg_stat_database and pg_stat_user_tables at most once a second
 * (and only ~10 s after they go idle), so those views lag the work by up to ~1 s. Under steady load the
 * lag is alike at both ends of a window and cancels out; over windows of several seconds the error is
 * small. pg_stat_statements is updated as each statement ends; WAL is server-wide (run nothing else).
 */
async function pgSnapshot(db, { schemas, statements, finished, inboxes = [], since }) {
  const { rows: [row] } = await db.query(
    `select clock_timestamp() as at, d.xact_commit as commits, d.tup_inserted + d.tup_updated + d.tup_deleted as rows_written,
       pg_current_wal_lsn() - '0/0'::pg_lsn as wal_bytes,
       (select coalesce(sum(n_tup_upd - n_tup_hot_upd), 0) from pg_stat_user_tables where schemaname = any($1::text[])) as non_hot,
       ${statements ? '(select coalesce(sum(calls), 0) from pg_stat_statements where dbid = d.datid)' : 'null'} as statements,
       ${finished ? `(select count(*) from ${finished} where state in ('COMPLETED', 'COMPENSATED'))` : 'null'} as finished,
       ${since && inboxes.length ? inboxes.map((table) => `(select count(*) from ${table} where processed_at >= $2)`).join(' + ') : 'null'} as inbox_rows
     from pg_stat_database d where d.datname = current_database()`,
    since && inboxes.length ? [schemas, since] : [schemas],
  );
  const number = (value) => (value === null ? null : Number(value));
  return {
    at: row.at,
    commits: number(row.commits),
    rowsWritten: number(row.rows_written),
    walBytes: number(row.wal_bytes),
    nonHotUpdates: number(row.non_hot),
    statements: number(row.statements),
    finished: number(row.finished),
    inboxRows: number(row.inbox_rows),
  };
}

/**
 * Per saga over a window: pg counters (B − A), messages and CPU (ms; a jiffy is 10 ms at USER_HZ 100).
 * Messages = 2 × inbox rows processed in the window: every participant command processed writes one
 * inbox row, and the command and its reply are one published message each. Retries, redeliveries and
 * dead letters are not counted, nor anything published besides commands and replies.
 */
function ledgerOf(a, b, sagas, cpu) {
  const per = (value) => (sagas > 0 && Number.isFinite(value) ? value / sagas : null);
  const delta = (key) => (a[key] === null || b[key] === null ? null : per(b[key] - a[key]));
  const ms = (jiffies) => per(jiffies * 10);
  return {
    sagas,
    seconds: (b.at - a.at) / 1000,
    statements: delta('statements'),
    commits: delta('commits'),
    rowsWritten: delta('rowsWritten'),
    nonHotUpdates: delta('nonHotUpdates'),
    walKb: per((b.walBytes - a.walBytes) / 1024),
    messages: b.inboxRows === null ? null : per(2 * b.inboxRows),
    // app: the five Sagaflow processes, or bare's node processes (its main process and forked participants)
    cpuMs: Object.fromEntries(['rabbitmq', 'postgres', 'app', 'driver', 'other'].map((key) => [key, ms(cpu[key])])),
    // system calls of the five Sagaflow processes (or bare's): each write on loopback wakes another process
    appSyscalls: { reads: per(cpu.appReads), writes: per(cpu.appWrites) },
    cpuMsByProcess: Object.fromEntries(Object.entries(cpu.byProcess).map(([name, jiffies]) => [name, ms(jiffies)])),
  };
}

// ---- CPU split and memory from /proc -----------------------------------------------------------------
function snapshot() {
  const procs = new Map();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    procs.set(Number(pid), { comm: stat.slice(stat.indexOf('(') + 1, close), ppid: Number(fields[1]), jiffies: Number(fields[11]) + Number(fields[12]), ...syscalls(pid) });
  }
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { procs, idle: cpu[3] + cpu[4], steal: cpu[7] ?? 0, at: performance.now() };
}

/** Read and write system calls a process has made (/proc/<pid>/io: every read, recv, write, writev, send...). */
function syscalls(pid) {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    return { reads: Number(/syscr: (\d+)/.exec(io)?.[1] ?? 0), writes: Number(/syscw: (\d+)/.exec(io)?.[1] ?? 0) };
  } catch {
    return { reads: 0, writes: 0 }; // gone, or not ours to read
  }
}

/**
 * Jiffies used between two snapshots by component, and by process of the system measured (`app`: pid ->
 * name). rabbitmq and postgres are every process of theirs on the machine; driver is this script.
 */
function cpuUsed(before, after, app) {
  const used = { rabbitmq: 0, postgres: 0, app: 0, driver: 0, other: 0, byProcess: {}, appReads: 0, appWrites: 0 };
  const groupOf = (pid, comm) => {
    if (app.has(pid)) return 'app';
    if (pid === process.pid) return 'driver';
    if (['beam.smp', 'erl_child_setup', 'epmd', 'inet_gethost'].includes(comm)) return 'rabbitmq';
    if (comm === 'postgres') return 'postgres';
    return 'other';
  };
  for (const [pid, proc] of after.procs) {
    const earlier = before.procs.get(pid);
    const jiffies = proc.jiffies - (earlier?.comm === proc.comm ? earlier.jiffies : 0);
    used[groupOf(pid, proc.comm)] += jiffies;
    if (!app.has(pid)) continue;
    used.byProcess[app.get(pid)] = jiffies;
    const same = earlier?.comm === proc.comm;
    used.appReads += proc.reads - (same ? earlier.reads : 0);
    used.appWrites += proc.writes - (same ? earlier.writes : 0);
  }
  return { ...used, idle: after.idle - before.idle, steal: after.steal - before.steal, seconds: (after.at - before.at) / 1000 };
}

/** Jiffies per second at 100 Hz = % of one core (200 = both cores of this machine). */
function cpuPercent(cpu, keys, from = cpu) {
  return Object.fromEntries(keys.map((key) => [key, from[key] / cpu.seconds]));
}

/** `orchestrator (pid 123)`, `payment (pid 124)`: which of our processes a pid is. */
function processName(pid) {
  let entry = '';
  try {
    entry = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').find((arg) => arg.endsWith('main.js')) ?? '';
  } catch {} // gone
  return `${/(orchestrator|services\/(\w+))\/dist/.exec(entry)?.slice(1).reverse().find(Boolean) ?? 'process'} (pid ${pid})`;
}

/** A process's title (bare's participants set saga-<role>): comm is cut at 15 characters, cmdline is not. */
function titleOf(pid, comm) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0].trim() || comm;
  } catch {
    return comm; // gone
  }
}

/** Peak resident memory (VmHWM) of each of our processes, in MB (by name: instances and levels meet in the highest). */
function peakRss(pids) {
  return Object.fromEntries(pids.map((pid) => [processName(pid).replace(/ \(pid \d+\)$/, ''), Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024]));
}

// ---- the reference: ../shared/bench/bare-saga.mjs ------------------------------------------------------
// bare reads the server from PG* like this (common.mjs PG_CONFIG); we pass it PGPASSWORD ?? ''.
const BARE_PG = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  password: process.env.PGPASSWORD ?? '',
};

/** A database holding only the reference, so pg_stat_database counts bare and nothing else. */
async function bareDatabase() {
  const name = `sagaflow_bench_bare_${process.pid}`;
  const admin = new pg.Client({ ...BARE_PG, database: process.env.PGDATABASE ?? 'postgres' });
  await admin.connect();
  try {
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  return {
    name,
    drop: async () => {
      const client = new pg.Client({ ...BARE_PG, database: process.env.PGDATABASE ?? 'postgres' });
      await client.connect();
      await client.query(`drop database if exists "${name}" with (force)`).finally(() => client.end());
    },
  };
}

/**
 * Measures bare's levels from outside (bare-saga.mjs cannot change): it makes a schema
 * saga_bench_<pid>_<C>_<n> per level and drops it at the level's end. Poll for it (a catalog lookup every
 * 200 ms, then an EXISTS until a saga has ended), wait the warm-up, take A, wait BARE_WINDOW_S, take B.
 * Nothing is polled between A and B. Returns one ledger (or null) per level, in order.
 */
async function watchBare(pid, label, database, levels, exited) {
  const db = new pg.Client({ ...BARE_PG, database });
  await db.connect();
  const statements = await enableStatements(db);
  const poll = async (probe) => {
    for (;;) {
      if (exited()) return undefined;
      const found = await probe();
      if (found) return found;
      await sleep(BARE_POLL_MS);
    }
  };
  const seen = new Set();
  const level = async (concurrency) => {
    const pattern = `saga\\_bench\\_${pid}\\_${concurrency}\\_%`;
    const schema = await poll(async () => (await db.query('select nspname from pg_namespace where nspname like $1', [pattern])).rows.map((row) => row.nspname).find((name) => !seen.has(name)));
    if (!schema) return null;
    seen.add(schema);
    const table = `"${schema}".saga`;
    if (!(await poll(async () => (await db.query(`select exists (select 1 from ${table} where state in ('COMPLETED', 'COMPENSATED')) as ended`)).rows[0].ended))) return null;
    await sleep(WARMUP * 1000);
    const cpuBefore = snapshot();
    const before = await pgSnapshot(db, { schemas: [schema], statements, finished: table });
    await sleep(BARE_WINDOW_S * 1000);
    const cpuAfter = snapshot();
    const after = await pgSnapshot(db, { schemas: [schema], statements, finished: table, inboxes: [`"${schema}".inbox`], since: before.at });
    // bare's processes: its main one (orchestrator and load driver) and, in multi mode, its forked participants
    const app = new Map([[pid, `bare main (pid ${pid})`]]);
    for (const procs of [cpuBefore.procs, cpuAfter.procs]) for (const [child, proc] of procs) if (proc.ppid === pid) app.set(child, `${titleOf(child, proc.comm)} (pid ${child})`);
    const ledger = ledgerOf(before, after, after.finished - before.finished, cpuUsed(cpuBefore, cpuAfter, app));
    log(`${label} C=${concurrency} ledger: ${ledgerLine(ledger)}`);
    return ledger;
  };
  const ledgers = [];
  try {
    for (const concurrency of levels) {
      ledgers.push(
        await level(concurrency).catch((error) => {
          log(`${label} C=${concurrency}: no ledger (${error.message})`);
          return null;
        }),
      );
    }
  } finally {
    await db.end().catch(() => undefined);
  }
  return ledgers;
}

/** Runs the bare saga in one layout at the same levels; its folder is read-only and has no node_modules, so it runs from a copy using ours. */
async function runBare(mode, database, levels, ours) {
  const label = `bare-${mode}`;
  const dir = mkdtempSync(join(tmpdir(), 'sagaflow-bare-'));
  try {
    for (const file of readdirSync(BARE_DIR).filter((name) => name.endsWith('.mjs'))) cpSync(join(BARE_DIR, file), join(dir, file));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    const args = ['bare-saga.mjs', `--mode=${mode}`, `--conc=${levels.join(',')}`, `--secs=${SECS}`, `--warmup=${WARMUP}`, `--fail=${DECLINE}`];
    log(`${label} reference: PGDATABASE=${database} node ${args.join(' ')}`);
    const child = spawn(process.execPath, args, { cwd: dir, env: { ...process.env, PGPASSWORD: BARE_PG.password, PGDATABASE: database }, stdio: ['ignore', 'pipe', 'inherit'] });
    let exited = false;
    const exit = new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code) => {
        exited = true;
        code === 0 ? resolve() : reject(new Error(`bare-saga.mjs --mode=${mode} exited with ${code}`));
      });
    });
    exit.catch(() => undefined); // awaited below, once its output is read
    const ledgers = watchBare(child.pid, label, database, levels, () => exited).catch((error) => {
      log(`${label}: no ledger (${error.message})`);
      return [];
    });
    const results = [];
    for await (const line of createInterface({ input: child.stdout })) {
      process.stderr.write(`${line}\n`);
      const result = parseBareLine(line);
      if (!result) continue;
      results.push(result);
      // the headline as it comes: ours against this layout at the same level
      const mine = ours.find((row) => row.concurrency === result.concurrency);
      log(`C=${result.concurrency}: ours ${f1(mine?.sagasPerSecond)} sagas/s, ${label} ${f1(result.sagasPerSecond)} → ours / ${label} ${ratio(mine?.sagasPerSecond, result.sagasPerSecond)}`);
    }
    await exit;
    const measured = await ledgers;
    return results.map((result, index) => ({ ...result, ledger: levels[index] === result.concurrency ? (measured[index] ?? null) : null }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function parseBareLine(line) {
  const match = /C=(\d+)\s+(\d+) sagas\/s .*?p50 ([\d.]+) p95 ([\d.]+) p99 ([\d.]+) \| pg commits\/saga ([\d.]+) \| cpu%\(200=both cores\): rabbit (\d+) pg (\d+) node (\d+).*?\| (check \w+)/.exec(line);
  if (!match) return null;
  const [, c, rate, p50, p95, p99, commits, rabbit, postgres, node, check] = match;
  return {
    concurrency: Number(c),
    sagasPerSecond: Number(rate),
    latencyMs: { p50: Number(p50), p95: Number(p95), p99: Number(p99) },
    pgCommitsPerSaga: Number(commits),
    cpuPercentOfOneCore: { rabbitmq: Number(rabbit), postgres: Number(postgres), node: Number(node) },
    check,
  };
}

// ---- report --------------------------------------------------------------------------------------------
const NO_STATEMENTS = 'n/a (needs pg_stat_statements in shared_preload_libraries)';
/** `orchestrator (pid 12)` -> `orchestrator`, unless two processes share the name (--instances). */
function shortNames(byProcess) {
  const names = Object.keys(byProcess).map((name) => name.replace(/ \(pid \d+\)$/, ''));
  return Object.entries(byProcess).map(([name, ms], index) => `${names.filter((short) => short === names[index]).length > 1 ? name : names[index]} ${f2(ms)}`);
}

function ledgerLine(ledger) {
  if (!ledger) return 'n/a';
  const c = ledger.cpuMs;
  return `${ledger.sagas} sagas in ${f1(ledger.seconds)} s; per saga: statements ${ledger.statements === null ? NO_STATEMENTS : f1(ledger.statements)}, commits ${f1(ledger.commits)}, rows written ${f1(ledger.rowsWritten)}, non-HOT updates ${f1(ledger.nonHotUpdates)}, WAL ${f1(ledger.walKb)} KB, messages ${f1(ledger.messages)}, CPU ms rabbit ${f2(c.rabbitmq)} pg ${f2(c.postgres)} app ${f2(c.app)} driver ${f2(c.driver)}, syscalls r/w ${f1(ledger.appSyscalls?.reads)}/${f1(ledger.appSyscalls?.writes)} (${shortNames(ledger.cpuMsByProcess).join(', ')})`;
}

/** One table per level: a row per figure, a column per system. */
function ledgerTable(concurrency, systems) {
  const rows = [
    ['sagas in the window', (l) => `${l.sagas} in ${f1(l.seconds)} s`],
    ['statements (pg_stat_statements)', (l) => (l.statements === null ? NO_STATEMENTS : f1(l.statements))],
    ['commits', (l) => f1(l.commits)],
    ['rows written (ins + upd + del)', (l) => f1(l.rowsWritten)],
    ['non-HOT updates', (l) => f1(l.nonHotUpdates)],
    ['WAL KB', (l) => f1(l.walKb)],
    ['messages (2 × inbox rows)', (l) => f1(l.messages)],
    ['CPU ms rabbitmq', (l) => f2(l.cpuMs.rabbitmq)],
    ['CPU ms postgres', (l) => f2(l.cpuMs.postgres)],
    ['CPU ms sagaflow / bare node', (l) => f2(l.cpuMs.app)],
    ['CPU ms bench driver (this script)', (l) => f2(l.cpuMs.driver)],
    ['CPU ms other (kernel I/O, ...)', (l) => f2(l.cpuMs.other)],
    ['read / write system calls, sagaflow / bare node', (l) => `${f1(l.appSyscalls?.reads)} / ${f1(l.appSyscalls?.writes)}`],
    ['CPU ms by process', (l) => shortNames(l.cpuMsByProcess).join('<br>')],
  ];
  return [
    `Per saga at ${concurrency} in flight:`,
    '',
    `| per saga | ${systems.map(([name]) => name).join(' | ')} |`,
    `|---|${systems.map(() => '---:').join('|')}|`,
    ...rows.map(([title, cell]) => `| ${title} | ${systems.map(([, ledger]) => (ledger ? cell(ledger) : '-')).join(' | ')} |`),
    '',
  ];
}

function markdown({ ours, variantRuns, bare, bareMulti, rss, meta }) {
  const at = (list, concurrency) => list.find((candidate) => candidate.concurrency === concurrency);
  const lines = [
    `Sagaflow vs bare amqplib+pg saga, ${meta.date}, ${meta.instances} instance(s) of each process, ${meta.decline * 100}% declined, ${meta.secs} s per level after ${meta.warmup} s warm-up; ${meta.bareModes.length ? `bare ran as ${meta.bareModes.map((mode) => `--mode=${mode}`).join(' and ')} (classic queues)` : 'no bare reference (--no-bare)'}; ours: ${meta.variants[0]}. ${meta.cpu}.`,
    '',
  ];
  if (meta.variants.length > 1 || meta.rounds > 1) lines.push(...variantTable(variantRuns, meta), '');
  if (bareMulti.length) {
    lines.push(`**Headline, ours / bare-multi** (bare with a process per participant, laid out like Sagaflow): ${ours.map((row) => `${ratio(row.sagasPerSecond, at(bareMulti, row.concurrency)?.sagasPerSecond)} at ${row.concurrency}`).join(', ')} in flight.`, '');
  }
  lines.push(
    '| in flight | sagas/s ours | sagas/s bare-multi | **ours / bare-multi** | sagas/s bare-single | ours / bare-single | p50 ms ours / bare-multi / bare-single | p99 ms ours / bare-multi / bare-single |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  const three = (row, multi, single, key) => `${f1(row.latencyMs[key])} / ${f1(multi?.latencyMs[key])} / ${f1(single?.latencyMs[key])}`;
  for (const row of ours) {
    const [multi, single] = [at(bareMulti, row.concurrency), at(bare, row.concurrency)];
    lines.push(
      `| ${row.concurrency} | ${f1(row.sagasPerSecond)} | ${f1(multi?.sagasPerSecond)} | **${ratio(row.sagasPerSecond, multi?.sagasPerSecond)}** | ${f1(single?.sagasPerSecond)} | ${ratio(row.sagasPerSecond, single?.sagasPerSecond)} | ${three(row, multi, single, 'p50')} | ${three(row, multi, single, 'p99')} |`,
    );
  }
  lines.push(
    '',
    '| in flight | p95 ms ours / bare-multi / bare-single | CPU % ours: rabbit / pg / sagaflow | CPU % bare-multi: rabbit / pg / node | CPU % bare-single: rabbit / pg / node | bare\'s own pg commits/saga multi / single | bare check multi / single |',
    '|---:|---:|---:|---:|---:|---:|---|',
  );
  const bareCpu = (b) => (b ? `${b.cpuPercentOfOneCore.rabbitmq} / ${b.cpuPercentOfOneCore.postgres} / ${b.cpuPercentOfOneCore.node}` : '-');
  for (const row of ours) {
    const [multi, single] = [at(bareMulti, row.concurrency), at(bare, row.concurrency)];
    const c = row.cpuPercentOfOneCore;
    lines.push(
      `| ${row.concurrency} | ${three(row, multi, single, 'p95')} | ${c.rabbitmq.toFixed(0)} / ${c.postgres.toFixed(0)} / ${c.sagaflow.toFixed(0)} | ${bareCpu(multi)} | ${bareCpu(single)} | ${f1(multi?.pgCommitsPerSaga)} / ${f1(single?.pgCommitsPerSaga)} | ${multi?.check.replace('check ', '') ?? '-'} / ${single?.check.replace('check ', '') ?? '-'} |`,
    );
  }
  lines.push(
    '',
    `Ledger: per saga over each level's window (ours: the measured ${meta.secs} s${meta.bareModes.length ? `; bare: ${meta.bareWindowSecs} s after its warm-up, watched from outside` : ''}). Messages = 2 × inbox rows (a command and its reply; retries and dead letters not counted); pg counters lag up to ~1 s; WAL, rabbitmq and postgres CPU are server-wide.`,
    '',
  );
  for (const row of ours) {
    const systems = [['ours', row.ledger]];
    if (meta.bareModes.includes('multi')) systems.push(['bare-multi', at(bareMulti, row.concurrency)?.ledger]);
    if (meta.bareModes.includes('single')) systems.push(['bare-single', at(bare, row.concurrency)?.ledger]);
    lines.push(...ledgerTable(row.concurrency, systems));
  }
  lines.push('| process | peak RSS MB |', '|---|---:|', ...Object.entries(rss).map(([name, mb]) => `| ${name} | ${mb.toFixed(0)} |`));
  return lines.join('\n');
}

/** Each variant's runs beside the first variant's of the same level and round, then the means over the rounds. */
function variantTable(runs, meta) {
  const lines = [
    `Variants (${meta.variants.join(', ')}), interleaved, ${meta.rounds} round(s); against ${meta.variants[0]} of the same round:`,
    '',
    '| in flight | round | variant | sagas/s | vs ' + meta.variants[0] + ' | p50 ms | p99 ms | CPU ms/saga: our processes / driver / rabbitmq / postgres | spans exported |',
    '|---:|---:|---|---:|---:|---:|---:|---:|---|',
  ];
  const first = (run) => runs.find((other) => other.concurrency === run.concurrency && other.round === run.round && other.variant === meta.variants[0]);
  for (const run of runs) {
    const c = run.cpuMsPerSaga;
    lines.push(
      `| ${run.concurrency} | ${run.round} | ${run.variant} | ${f1(run.sagasPerSecond)} | ${ratio(run.sagasPerSecond, first(run)?.sagasPerSecond)} | ${f1(run.latencyMs.p50)} | ${f1(run.latencyMs.p99)} | ${f2(c.sagaflow)} / ${f2(c.driver)} / ${f2(c.rabbitmq)} / ${f2(c.postgres)} | ${run.exported ? `${run.exported.requests} requests, ${f1(run.exported.kb)} KB` : '-'} |`,
    );
  }
  lines.push('', '| in flight | variant | mean sagas/s | vs ' + meta.variants[0] + ' | mean CPU ms/saga of our processes |', '|---:|---|---:|---:|---:|');
  const mean = (list, value) => list.reduce((sum, run) => sum + value(run), 0) / list.length;
  for (const level of meta.levels) {
    const of = (variant) => runs.filter((run) => run.concurrency === level && run.variant === variant);
    const reference = mean(of(meta.variants[0]), (run) => run.sagasPerSecond);
    for (const variant of meta.variants) {
      lines.push(`| ${level} | ${variant} | ${f1(mean(of(variant), (run) => run.sagasPerSecond))} | ${ratio(mean(of(variant), (run) => run.sagasPerSecond), reference)} | ${f2(mean(of(variant), (run) => run.cpuMsPerSaga.sagaflow ?? NaN))} |`);
    }
  }
  return lines;
}

const calibration = (() => {
  const start = performance.now();
  let x = 0;
  for (let i = 0; i < 2e8; i++) x += i % 7;
  return `CPU calibration ${(performance.now() - start).toFixed(0)} ms (lower = faster host; the bare bench's reports print the same loop)`;
})();

const random = seededRandom(2026);
const ours = [];
/** Every run of ours, each variant in each round (the first variant's first round is also in `ours`). */
const variantRuns = [];
const bareRuns = Object.fromEntries(BARE_MODES.map((mode) => [mode, []]));
const rss = {};
const bareDb = BARE_MODES.length ? await bareDatabase() : null;
try {
  // Level by level, ours then each layout of the reference: the host's speed drifts over minutes, so the
  // runs compared sit side by side. Each level gets a fresh system (nothing of ours runs during bare's).
  for (const level of LEVELS) {
    // The variants of ours interleaved, every other round in reverse (A B B A …), so that a host speeding up or
    // slowing down over the rounds favours none of them.
    for (let round = 1; round <= ROUNDS; round++) {
      for (const variant of round % 2 ? VARIANTS : [...VARIANTS].reverse()) {
        const before = sink && { ...sink.received };
        const result = await runOurs(level, variant);
        const exported = sink && variant.tracing ? { requests: sink.received.requests - before.requests, kb: (sink.received.bytes - before.bytes) / 1024 } : null;
        variantRuns.push({ variant: variant.name, round, ...result, exported });
        if (round === 1 && variant === VARIANTS[0]) ours.push(result);
      }
    }
    // multi first: it is the headline
    for (const mode of ['multi', 'single'].filter((candidate) => BARE_MODES.includes(candidate))) bareRuns[mode].push(...(await runBare(mode, bareDb.name, [level], ours)));
  }
} finally {
  await bareDb?.drop();
  await sink?.close();
}

/** Our system at one level, from a fresh start; its processes' peak RSS joins `rss` (the highest per process). */
async function runOurs(level, variant) {
  const system = await startSystem(variant);
  const db = new pg.Client({ connectionString: system.databaseUrl });
  try {
    await db.connect();
    const statements = await enableStatements(db);
    const listener = new pg.Client({ connectionString: system.databaseUrl });
    await listener.connect();
    await listener.query(`listen ${SAGA_ENDED_CHANNEL}`);
    const result = await runLevel(system, db, statements, endWatcher(listener), level, random);
    log(`ours (${variant.name}) C=${level}: ${f1(result.sagasPerSecond)} sagas/s, p50 ${f1(result.latencyMs.p50)} p99 ${f1(result.latencyMs.p99)} ms, cpu ${JSON.stringify(result.cpuPercentOfOneCore, (key, value) => (typeof value === 'number' ? Math.round(value) : value))}`);
    log(`ours (${variant.name}) C=${level} ledger: ${ledgerLine(result.ledger)}`);
    for (const [name, mb] of Object.entries(peakRss(system.pids()))) rss[name] = Math.max(rss[name] ?? 0, mb);
    await listener.end();
    return result;
  } finally {
    await db.end().catch(() => undefined);
    await system.dispose();
  }
}
await cluster?.stop();
const report = {
  meta: { date: new Date().toISOString(), node: process.version, instances: INSTANCES, clusterNodes: CLUSTER_NODES, decline: DECLINE, secs: SECS, warmup: WARMUP, levels: LEVELS, bareModes: BARE_MODES, bareWindowSecs: BARE_WINDOW_S, cpu: calibration, variants: VARIANTS.map((variant) => variant.name), rounds: ROUNDS },
  ours,
  variantRuns,
  bare: bareRuns.single ?? [],
  bareMulti: bareRuns.multi ?? [],
  rss,
};
const table = markdown(report);
const outDir = resolvePath(ROOT, options.out);
mkdirSync(outDir, { recursive: true });
const stamp = report.meta.date.replace(/[:.]/g, '-');
writeFileSync(join(outDir, `bench-${stamp}.json`), JSON.stringify(report, null, 2));
writeFileSync(join(outDir, `bench-${stamp}.md`), `${table}\n`);
console.log(table);
log(`\nwritten: ${join(options.out, `bench-${stamp}.json`)} and .md`);
if (BUDGET) {
  const budgetFile = resolvePath(ROOT, options['budget-file']);
  const measured = budgetCounts(ours);
  if (options['write-budget']) {
    const runs = Array.from({ length: ROUNDS }, (_, index) => budgetCounts(variantRuns.filter((run) => run.round === index + 1)));
    console.log(`\n${spreadTable(runs)}`);
    mkdirSync(dirname(budgetFile), { recursive: true });
    writeFileSync(budgetFile, `${JSON.stringify(highestOfRuns(runs), null, 2)}\n`);
    log(`budget (each count's highest of ${ROUNDS} runs) written to ${options['budget-file']}`);
  } else {
    const check = checkBudget(JSON.parse(readFileSync(budgetFile, 'utf8')), measured);
    console.log(`\n${budgetTable(check)}`);
    if (check.lines.some((line) => line.key === 'statements' && line.measured === null)) {
      log('statements are counted by pg_stat_statements: add it to shared_preload_libraries and restart PostgreSQL (.ci/run does)');
    }
    if (!check.ok) process.exitCode = 1;
  }
}
