// Overload: orders offered open loop at twice the rate the system completes (measured first, in the same
// run). Admission control sheds what it cannot finish quickly, at the door: every POST is answered fast,
// 202 or 429/503 with Retry-After, and what was accepted confirms, quickly. `npm run overload` runs the same
// for longer (the note has a 10-minute run). On a system of the suite's own, with product defaults.
import { overloadCatalogFile, runOverload } from '../../shared/src/testkit/index.js';
import { type SuiteSystem, startSuiteSystem } from './suite-system.js';

const SECONDS = Number(process.env.OVERLOAD_SECONDS ?? 60);
let suite: SuiteSystem;

beforeAll(async () => {
  suite = await startSuiteSystem('overload', { CATALOG_SEED_FILE: overloadCatalogFile() });
}, 120_000);
afterAll(async () => {
  await suite?.dispose();
}, 60_000);

test(`orders offered at 2x the completed rate for ${SECONDS} s: fast answers, accepted orders confirm quickly, memory bounded`, async () => {
  const { client, system, environment } = suite.isolated;
  const report = await runOverload({ client, system, databaseUrl: environment.databaseUrl, seconds: SECONDS, log: (line) => console.info(line) });
  console.info(JSON.stringify(report, null, 2));
  expect(Object.keys(report.answers).filter((status) => !['202', '429', '503'].includes(status))).toEqual([]);
  expect(report.refusedWithoutRetryAfter).toBe(0);
  expect(report.postP99Ms).toBeLessThanOrEqual(1_000);
  expect(report.confirmed).toBeGreaterThanOrEqual(Math.ceil(report.accepted * 0.99));
  expect(report.finalP99Ms).toBeLessThanOrEqual(30_000);
  expect(Object.entries(report.peakRssMb).filter(([, mb]) => mb > 300)).toEqual([]);
  expect(report.afterwards).toBe('CONFIRMED');
}, SECONDS * 1_000 + 420_000);
