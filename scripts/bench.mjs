// `npm run bench`: sagas/s, latency, CPU split and memory of Sagaflow against the bare amqplib+pg saga
// (../shared/bench/bare-saga.mjs) at the same levels, in one run. A closed loop per level: C clients each
// POST /orders, wait for the saga's end (PostgreSQL NOTIFY, no polling), and POST again.
//
//   npm run bench -- --levels 1,16,64,256 --secs 15 --warmup 3 --decline 0.1 --instances 1
//   options: --levels list (1,16,64,256)  --secs per level (15)  --warmup s (3)  --decline share (0.1)
//            --instances N: N of each process, side by side (1)  --no-bare: skip the reference
//            --target URL --database URL: drive a system already running instead of starting one
//            --bare-dir: where bare-saga.mjs is (../shared/bench beside the repository, or $BARE_BENCH_DIR)
//            --out dir (bench-results)  --log-level (info)
//            --cpu-prof dir: profile every process (node --cpu-prof); summarise with scripts/profile-summary.mjs
// Latency is from the saga row's created_at (the POST) to its updated_at at the end: times the system
// records. Output: a markdown table on stdout and <out>/bench-<time>.{json,md}.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { FINAL_SAGA_STATUSES, SAGA_ENDED_CHANNEL } from '../shared/dist/contracts/index.js';
import { seededRandom, startIsolatedSystem } from '../shared/dist/testkit/index.js';

const { values: options } = parseArgs({
  options: {
    levels: { type: 'string', default: '1,16,64,256' },
    secs: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '3' },
    decline: { type: 'string', default: '0.1' },
    instances: { type: 'string', default: '1' },
    'no-bare': { type: 'boolean', default: false },
    'bare-dir': { type: 'string' },
    target: { type: 'string' },
    database: { type: 'string' },
    out: { type: 'string', default: 'bench-results' },
    'log-level': { type: 'string', default: 'info' },
    'cpu-prof': { type: 'string' },
  },
});
const LEVELS = options.levels.split(',').map(Number);
const SECS = Number(options.secs);
const WARMUP = Number(options.warmup);
const DECLINE = Number(options.decline);
const INSTANCES = Number(options.instances);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BARE_DIR = options['bare-dir'] ?? process.env.BARE_BENCH_DIR ?? join(ROOT, '..', 'shared', 'bench');
if (!options['no-bare'] && !existsSync(join(BARE_DIR, 'bare-saga.mjs'))) {
  console.error(`The bare reference is not at ${BARE_DIR}/bare-saga.mjs: pass --bare-dir <folder> (or BARE_BENCH_DIR), or --no-bare.`);
  process.exit(2);
}
const SKUS = Array.from({ length: 100 }, (_, index) => `SKU-BENCH-${index}`);

const log = (line) => process.stderr.write(`${line}\n`);
const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the system under test --------------------------------------------------------------------------
async function startSystem() {
  if (options.target) {
    if (!options.database) throw new Error('--target needs --database (the orchestrator database, for LISTEN and timestamps)');
    return { url: options.target, databaseUrl: options.database, pids: () => [], dispose: async () => {} };
  }
  const seedFile = join(mkdtempSync(join(tmpdir(), 'sagaflow-bench-')), 'catalog.json');
  writeFileSync(seedFile, JSON.stringify(SKUS.map((sku) => ({ sku, name: sku, price: 500, currency: 'EUR', available: 1_000_000_000 }))));
  const started = await startIsolatedSystem({
    prefix: 'sagaflow_bench',
    rootDir: ROOT,
    logDir: join(resolvePath(ROOT, options.out), 'logs', '{vhost}'),
    instances: INSTANCES,
    nodeFlags: options['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${options['cpu-prof']}`] : [],
    env: { CATALOG_SEED_FILE: seedFile, LOG_LEVEL: options['log-level'] },
  });
  log(`system up on vhost ${started.environment.vhost} (logs in ${started.logDir})`);
  return {
    url: started.system.url(),
    urls: started.system.urls(),
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

async function runLevel(system, db, waitForEnd, concurrency, random) {
  const urls = system.urls ?? [system.url];
  let running = true;
  let failures = 0;
  const client = async (index) => {
    const url = urls[index % urls.length];
    while (running) {
      const body = {
        customerId: `bench-${index}`,
        items: [{ sku: SKUS[Math.floor(random() * SKUS.length)], quantity: 1 }],
        paymentMethod: random() < DECLINE ? 'tok_chargeDeclined' : 'tok_visa',
      };
      const response = await fetch(`${url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (response.status !== 202) {
        failures++;
        await sleep(100);
        continue;
      }
      const { orderId } = await response.json();
      await waitForEnd(orderId);
    }
  };
  const clients = Array.from({ length: concurrency }, (_, index) => client(index));
  await sleep(WARMUP * 1000);
  const cpu = cpuSampler(system.pids());
  const { rows: [{ now: windowStart }] } = await db.query('select clock_timestamp() as now');
  const pgBefore = await pgWork(db);
  cpu.start();
  await sleep(SECS * 1000);
  const split = cpu.stop();
  const pgAfter = await pgWork(db);
  const { rows: [{ now: windowEnd }] } = await db.query('select clock_timestamp() as now');
  running = false;
  await Promise.all(clients);
  const { rows } = await db.query(
    `select status, extract(epoch from (updated_at - created_at)) * 1000 as ms from orchestrator.saga
     where updated_at >= $1 and updated_at < $2 and status = any($3)`,
    [windowStart, windowEnd, FINAL_SAGA_STATUSES],
  );
  const latencies = rows.map((row) => Number(row.ms)).sort((a, b) => a - b);
  const seconds = (windowEnd - windowStart) / 1000;
  const perSaga = (value) => (value / 100) * 1000 / (rows.length / seconds); // % of a core -> cpu-ms per saga
  return {
    concurrency,
    sagasPerSecond: rows.length / seconds,
    completed: rows.filter((row) => row.status === 'COMPLETED').length,
    compensated: rows.filter((row) => row.status === 'COMPENSATED').length,
    other: rows.filter((row) => !['COMPLETED', 'COMPENSATED'].includes(row.status)).length,
    refusedPosts: failures,
    latencyMs: { p50: pct(latencies, 50), p95: pct(latencies, 95), p99: pct(latencies, 99) },
    cpuPercentOfOneCore: split,
    cpuMsPerSaga: Object.fromEntries(['rabbitmq', 'postgres', 'sagaflow', 'driver'].map((key) => [key, perSaga(split[key])])),
    // What PostgreSQL had to do per saga: its CPU follows these more than the statement count.
    pgPerSaga: {
      commits: (pgAfter.commits - pgBefore.commits) / rows.length,
      rowsWritten: (pgAfter.rowsWritten - pgBefore.rowsWritten) / rows.length,
      walKb: (pgAfter.walBytes - pgBefore.walBytes) / 1024 / rows.length,
    },
  };
}

/**
 * The database's commits and rows written (inserted, updated, deleted) and the server's WAL position.
 * The statistics reach pg_stat_database within a second of each commit, so over a level's window of
 * several seconds they are close; WAL is server-wide (nothing else runs during a bench).
 */
async function pgWork(db) {
  const { rows: [row] } = await db.query(
    `select xact_commit as commits, tup_inserted + tup_updated + tup_deleted as rows_written, pg_current_wal_lsn() - '0/0'::pg_lsn as wal_bytes
     from pg_stat_database where datname = current_database()`,
  );
  return { commits: Number(row.commits), rowsWritten: Number(row.rows_written), walBytes: Number(row.wal_bytes) };
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
    procs.set(Number(pid), { comm: stat.slice(stat.indexOf('(') + 1, close), jiffies: Number(fields[11]) + Number(fields[12]) });
  }
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { procs, idle: cpu[3] + cpu[4], steal: cpu[7] ?? 0, at: performance.now() };
}

/** CPU by component over a window, in % of one core (200 = both cores of this machine). */
function cpuSampler(ourPids) {
  const ours = new Set(ourPids);
  const groupOf = (pid, comm) => {
    if (ours.has(pid)) return 'sagaflow';
    if (pid === process.pid) return 'driver';
    if (['beam.smp', 'erl_child_setup', 'epmd', 'inet_gethost'].includes(comm)) return 'rabbitmq';
    if (comm === 'postgres') return 'postgres';
    return 'other';
  };
  let before;
  return {
    start: () => (before = snapshot()),
    stop: () => {
      const after = snapshot();
      const seconds = (after.at - before.at) / 1000;
      const split = { rabbitmq: 0, postgres: 0, sagaflow: 0, driver: 0, other: 0 };
      const perProcess = {};
      for (const [pid, proc] of after.procs) {
        const earlier = before.procs.get(pid);
        const used = proc.jiffies - (earlier?.comm === proc.comm ? earlier.jiffies : 0);
        split[groupOf(pid, proc.comm)] += used;
        if (ours.has(pid)) perProcess[processName(pid)] = used / seconds;
      }
      for (const key of Object.keys(split)) split[key] /= seconds; // jiffies/s at 100 Hz = % of one core
      split.perProcess = perProcess;
      split.idle = (after.idle - before.idle) / seconds;
      split.steal = (after.steal - before.steal) / seconds;
      return split;
    },
  };
}

/** `orchestrator (pid 123)`, `payment (pid 124)`: which of our processes a pid is. */
function processName(pid) {
  const entry = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').find((arg) => arg.endsWith('main.js')) ?? '';
  return `${/(orchestrator|services\/(\w+))\/dist/.exec(entry)?.slice(1).reverse().find(Boolean) ?? 'process'} (pid ${pid})`;
}

/** Peak resident memory (VmHWM) of each of our processes, in MB. */
function peakRss(pids) {
  return Object.fromEntries(pids.map((pid) => [processName(pid), Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024]));
}

// ---- the reference: ../shared/bench/bare-saga.mjs ------------------------------------------------------
/** Runs the bare saga at the same levels; its folder is read-only and has no node_modules, so it runs from a copy using ours. */
async function runBare() {
  const dir = mkdtempSync(join(tmpdir(), 'sagaflow-bare-'));
  try {
    for (const file of readdirSync(BARE_DIR).filter((name) => name.endsWith('.mjs'))) cpSync(join(BARE_DIR, file), join(dir, file));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    const args = ['bare-saga.mjs', `--conc=${LEVELS.join(',')}`, `--secs=${SECS}`, `--warmup=${WARMUP}`, `--fail=${DECLINE}`];
    log(`bare reference: node ${args.join(' ')}`);
    const output = await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, args, { cwd: dir, env: { ...process.env, PGPASSWORD: process.env.PGPASSWORD ?? '' }, stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (chunk) => {
        text += chunk;
        process.stderr.write(chunk);
      });
      child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`bare-saga.mjs exited with ${code}`))));
    });
    return output
      .split('\n')
      .map((line) =>
        /C=(\d+)\s+(\d+) sagas\/s .*?p50 ([\d.]+) p95 ([\d.]+) p99 ([\d.]+) \| pg commits\/saga ([\d.]+) \| cpu%\(200=both cores\): rabbit (\d+) pg (\d+) node (\d+).*?\| (check \w+)/.exec(line),
      )
      .filter(Boolean)
      .map(([, c, rate, p50, p95, p99, commits, rabbit, postgres, node, check]) => ({
        concurrency: Number(c),
        sagasPerSecond: Number(rate),
        latencyMs: { p50: Number(p50), p95: Number(p95), p99: Number(p99) },
        pgCommitsPerSaga: Number(commits),
        cpuPercentOfOneCore: { rabbitmq: Number(rabbit), postgres: Number(postgres), node: Number(node) },
        check,
      }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- report --------------------------------------------------------------------------------------------
function markdown({ ours, bare, rss, meta }) {
  const lines = [
    `Sagaflow vs bare amqplib+pg saga, ${meta.date}, ${meta.instances} instance(s) of each process, ${meta.decline * 100}% declined, ${meta.secs} s per level after ${meta.warmup} s warm-up. ${meta.cpu}.`,
    '',
    '| in flight | sagas/s ours | sagas/s bare | ratio | p50 ms ours / bare | p95 ms ours / bare | p99 ms ours / bare | CPU % ours: rabbit / pg / sagaflow | CPU % bare: rabbit / pg / node | per saga ours: commits / rows written / WAL KB | commits per saga bare |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of ours) {
    const reference = bare.find((candidate) => candidate.concurrency === row.concurrency);
    const ratio = reference ? (row.sagasPerSecond / reference.sagasPerSecond).toFixed(2) : '-';
    const pair = (key) => `${f1(row.latencyMs[key])} / ${f1(reference?.latencyMs[key])}`;
    const c = row.cpuPercentOfOneCore;
    const b = reference?.cpuPercentOfOneCore;
    lines.push(
      `| ${row.concurrency} | ${f1(row.sagasPerSecond)} | ${f1(reference?.sagasPerSecond)} | ${ratio}× | ${pair('p50')} | ${pair('p95')} | ${pair('p99')} | ${c.rabbitmq.toFixed(0)} / ${c.postgres.toFixed(0)} / ${c.sagaflow.toFixed(0)} | ${b ? `${b.rabbitmq} / ${b.postgres} / ${b.node}` : '-'} | ${f1(row.pgPerSaga.commits)} / ${f1(row.pgPerSaga.rowsWritten)} / ${f1(row.pgPerSaga.walKb)} | ${f1(reference?.pgCommitsPerSaga)} |`,
    );
  }
  lines.push('', '| process | peak RSS MB |', '|---|---:|', ...Object.entries(rss).map(([name, mb]) => `| ${name} | ${mb.toFixed(0)} |`));
  return lines.join('\n');
}

const calibration = (() => {
  const start = performance.now();
  let x = 0;
  for (let i = 0; i < 2e8; i++) x += i % 7;
  return `CPU calibration ${(performance.now() - start).toFixed(0)} ms (lower = faster host; the bare bench's reports print the same loop)`;
})();

const system = await startSystem();
const db = new pg.Client({ connectionString: system.databaseUrl });
const ours = [];
let rss = {};
try {
  await db.connect();
  const listener = new pg.Client({ connectionString: system.databaseUrl });
  await listener.connect();
  await listener.query(`listen ${SAGA_ENDED_CHANNEL}`);
  const waitForEnd = endWatcher(listener);
  const random = seededRandom(2026);
  for (const level of LEVELS) {
    const result = await runLevel(system, db, waitForEnd, level, random);
    log(`ours C=${level}: ${f1(result.sagasPerSecond)} sagas/s, p50 ${f1(result.latencyMs.p50)} p99 ${f1(result.latencyMs.p99)} ms, cpu ${JSON.stringify(result.cpuPercentOfOneCore, (key, value) => (typeof value === 'number' ? Math.round(value) : value))}`);
    ours.push(result);
  }
  rss = peakRss(system.pids());
  await listener.end();
} finally {
  await db.end().catch(() => undefined);
  await system.dispose();
}
const bare = options['no-bare'] ? [] : await runBare();
const report = {
  meta: { date: new Date().toISOString(), node: process.version, instances: INSTANCES, decline: DECLINE, secs: SECS, warmup: WARMUP, levels: LEVELS, cpu: calibration },
  ours,
  bare,
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
