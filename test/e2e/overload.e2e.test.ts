// Overload: orders offered open loop at twice the rate the system completes (measured first, in the same
// run). Admission control sheds what it cannot finish quickly, at the door: every POST is answered fast,
// 202 or 429/503 with Retry-After, and what was accepted confirms, quickly. It runs `npm run overload` (a
// system of its own, with product defaults) for 60 s: the load comes from a plain Node process, as a client's
// would. Driven from inside jest's module sandbox, the client's own lag reached the POST times it measured (a
// p99 of 0.6–1.05 s at 200–270 orders/s, where the same load from its own process answers within 0.1 s).
import type { OverloadReport } from '../../shared/src/testkit/index.js';
import { runScript } from './run-script.js';

const SECONDS = Number(process.env.OVERLOAD_SECONDS ?? 60);

test(`orders offered at 2x the completed rate for ${SECONDS} s: fast answers, accepted orders confirm quickly, memory bounded`, async () => {
  const { code, output } = await runScript('overload.mjs', ['--minutes', String(SECONDS / 60)], { NODE_OPTIONS: '' });
  console.info(output);
  const json = /## Overload report\n([\s\S]*?)\n(?:PASS|FAIL) /.exec(output)?.[1];
  expect(json).toBeDefined();
  const report = JSON.parse(json!) as OverloadReport;
  expect(Object.keys(report.answers).filter((status) => !['202', '429', '503'].includes(status))).toEqual([]);
  expect(report.refusedWithoutRetryAfter).toBe(0);
  expect(report.postP99Ms).toBeLessThanOrEqual(1_000);
  expect(report.confirmed).toBeGreaterThanOrEqual(Math.ceil(report.accepted * 0.99));
  expect(report.finalP99Ms).toBeLessThanOrEqual(30_000);
  expect(Object.entries(report.peakRssMb).filter(([, mb]) => mb > 300)).toEqual([]);
  expect(report.afterwards).toBe('CONFIRMED');
  expect(code).toBe(0);
}, SECONDS * 1_000 + 480_000);
