// `npm run overload`: orders offered open loop at twice the rate the system completes (measured first,
// closed loop), on a system of its own with the product's settings; then what admission control made of it:
// how every POST was answered and how fast, how many accepted orders confirmed and how long they took, the
// completed rate under load, and each process's peak memory. Exits 1 if the overload test's bounds fail.
//
//   npm run overload -- --minutes 10
//   options: --minutes (1)  --factor: offered / completed rate (2)  --rate: offer this many per second instead
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { overloadCatalogFile, runOverload, startIsolatedSystem } from '../shared/dist/testkit/index.js';

const { values: options } = parseArgs({ options: { minutes: { type: 'string', default: '1' }, factor: { type: 'string', default: '2' }, rate: { type: 'string' } } });
const started = Date.now();
const log = (line) => console.log(`[overload ${((Date.now() - started) / 1000).toFixed(0)}s] ${line}`);
const rootDir = fileURLToPath(new URL('..', import.meta.url));
const isolated = await startIsolatedSystem({ prefix: 'sagaflow_overload', rootDir, logDir: `${rootDir}test-logs/{vhost}`, env: { CATALOG_SEED_FILE: overloadCatalogFile() } });
let exitCode = 1;
try {
  const report = await runOverload({
    client: isolated.client,
    system: isolated.system,
    databaseUrl: isolated.environment.databaseUrl,
    seconds: Number(options.minutes) * 60,
    factor: Number(options.factor),
    rate: options.rate ? Number(options.rate) : undefined,
    settleSeconds: 300,
    log,
  });
  const checks = [
    ['every POST answered 202, or 429/503 with Retry-After', Object.keys(report.answers).every((status) => ['202', '429', '503'].includes(status)) && report.refusedWithoutRetryAfter === 0],
    [`POST p99 ≤ 1 s (${report.postP99Ms} ms)`, report.postP99Ms <= 1_000],
    [`≥ 99% of accepted orders confirmed (${report.confirmed} of ${report.accepted})`, report.confirmed >= report.accepted * 0.99],
    [`their p99 from POST to final ≤ 30 s (${(report.finalP99Ms / 1000).toFixed(1)} s)`, report.finalP99Ms <= 30_000],
    [`every process's peak RSS ≤ 300 MB (${JSON.stringify(Object.fromEntries(Object.entries(report.peakRssMb).map(([name, mb]) => [name, Math.round(mb)])))})`, Object.values(report.peakRssMb).every((mb) => mb <= 300)],
    [`an order placed afterwards confirms (${report.afterwards})`, report.afterwards === 'CONFIRMED'],
  ];
  console.log('\n## Overload report');
  console.log(JSON.stringify(report, null, 2));
  for (const [name, pass] of checks) console.log(`${pass ? 'PASS' : 'FAIL'}  ${name}`);
  exitCode = checks.every(([, pass]) => pass) ? 0 : 1;
} catch (error) {
  console.error(`overload run failed: ${error.stack ?? error}`);
} finally {
  await isolated.dispose();
}
process.exit(exitCode);
