// Every fault kind at every step and every compensation, all at once, on a system of its own (it crashes
// processes, which are restarted as a supervisor would). Each order must end as its fault dictates, and the
// orders that must settle keep the stock, money and notification invariants.
import { fileURLToPath } from 'node:url';
import type { FaultSpec } from '../../shared/src/contracts/fault-plan.js';
import {
  checkInvariants,
  type IsolatedSystem,
  type OrderResponse,
  SagaflowClient,
  SagaflowSystem,
  snapshotStock,
  startIsolatedSystem,
} from '../../shared/src/testkit/index.js';

let isolated: IsolatedSystem;
let system: SagaflowSystem;
let client: SagaflowClient;

beforeAll(async () => {
  isolated = await startIsolatedSystem({
    prefix: 'sagaflow_faults',
    rootDir: fileURLToPath(new URL('../..', import.meta.url)),
    logDir: `${process.env.SAGAFLOW_LOG_DIR}/fault-matrix`,
    // A hung attempt is given up after 4 s; the deadline outlasts service restarts (2-5 s each on a slow
    // machine) and cancels the orders whose charge never answers.
    env: { FAULT_INJECTION: 'true', STEP_TIMEOUT_MS: '4000', SAGA_DEADLINE_MS: '60000', COMPENSATION_ATTEMPTS: '5' },
    restartCrashed: true,
  });
  ({ system, client } = isolated);
}, 120_000);

afterAll(async () => {
  await isolated?.dispose();
});

const KINDS: Record<string, FaultSpec> = {
  error: { error: 2 },
  fail: { fail: 'injected' },
  delay: { delay: 500 },
  'no-reply': { 'no-reply': 1 },
  'crash-before-commit': { 'crash-before-commit': true },
  'crash-after-commit': { 'crash-after-commit': true },
  'duplicate-reply': { 'duplicate-reply': true },
};

/** Where a fault is put, and how the order is driven there. */
const TARGETS = [
  { target: 'order.create', path: 'success' },
  { target: 'inventory.reserve', path: 'success' },
  { target: 'payment.charge', path: 'success' },
  { target: 'order.confirm', path: 'success', afterPivot: true },
  { target: 'notification.send', path: 'success', afterPivot: true },
  { target: 'inventory.release', path: 'declined', compensation: true },
  { target: 'order.cancel', path: 'declined', compensation: true },
  { target: 'notification.send', path: 'declined', afterPivot: true }, // the cancellation notice
  { target: 'payment.refund', path: 'charge-timed-out', compensation: true },
] as const;

type Case = { name: string; orderId: string; kind: string; target: (typeof TARGETS)[number] };

/** What the order must end as. `null`: it is never final by design (retried until a person steps in). */
function expected({ kind, target }: Case): { status: 'CONFIRMED' | 'CANCELLED' | 'COMPENSATION_FAILED' | null; reason?: RegExp } {
  const base = target.path === 'success' ? 'CONFIRMED' : 'CANCELLED';
  if (kind !== 'fail') return { status: base };
  if ('afterPivot' in target) return { status: null }; // refusals after the pivot are retried, never compensated
  if ('compensation' in target) return { status: 'COMPENSATION_FAILED' };
  return { status: 'CANCELLED', reason: /^INJECTED_FAILURE: injected/ };
}

describe('fault matrix', () => {
  test('every fault kind at every step and compensation ends as it should, and the invariants hold', async () => {
    const settling = ['SKU-COFFEE'];
    const before = await snapshotStock(client, settling);
    const cases: Case[] = await Promise.all(
      TARGETS.flatMap((target) =>
        Object.entries(KINDS).map(async ([kind, spec]) => {
          const faults: Record<string, FaultSpec> = { [target.target]: spec };
          // Never answered, whatever restarts meanwhile: every attempt outruns the work timeout, until the deadline.
          if (target.path === 'charge-timed-out') faults['payment.charge'] = { delay: 600_000 };
          const mustSettle = expected({ kind, target } as Case).status !== null && expected({ kind, target } as Case).status !== 'COMPENSATION_FAILED';
          const orderId = await client.submit({
            customerId: `matrix-${target.target}-${target.path}-${kind}`,
            // Orders that must settle use their own SKU, so the stock invariants can be checked on them alone.
            items: [{ sku: mustSettle ? 'SKU-COFFEE' : 'SKU-MUG', quantity: 1 }],
            paymentMethod: target.path === 'declined' ? 'tok_chargeDeclined' : 'tok_visa',
            faults,
          });
          return { name: `${kind} at ${target.target} (${target.path})`, orderId, kind, target };
        }),
      ),
    );

    const settled: OrderResponse[] = [];
    for (const testCase of cases) {
      const { status, reason } = expected(testCase);
      if (status === null) {
        // Retried, never undone: after a few resends it is still running and nothing was compensated.
        const order = await waitFor(testCase, (current) => current.saga.history.filter((event) => event.kind === 'command-sent' && event.messageType === testCase.target.target).length >= 2);
        expect([testCase.name, order.saga.status]).toEqual([testCase.name, testCase.target.path === 'declined' ? 'COMPENSATING' : 'RUNNING']);
        continue;
      }
      const order = await client.awaitFinal(testCase.orderId, 90_000);
      if (status === 'COMPENSATION_FAILED') {
        expect([testCase.name, order.saga.status]).toEqual([testCase.name, 'COMPENSATION_FAILED']);
        continue;
      }
      expect([testCase.name, order.status]).toEqual([testCase.name, status]);
      if (reason) expect([testCase.name, order.failureReason]).toEqual([testCase.name, expect.stringMatching(reason)]);
      if (testCase.kind === 'error') {
        const step = order.saga.steps.find((candidate) => candidate.failures.length > 0);
        if (!('compensation' in testCase.target)) expect([testCase.name, step?.attempts]).toEqual([testCase.name, 3]);
      }
      // A hung attempt is the participant's to retry: the saga sent the command once.
      if (testCase.kind === 'no-reply') {
        const sent = order.saga.history.filter((event) => event.kind === 'command-sent' && event.messageType === testCase.target.target);
        expect([testCase.name, sent.length]).toEqual([testCase.name, 1]);
      }
      if (testCase.kind === 'duplicate-reply') expect([testCase.name, order.saga.history.some((event) => event.kind === 'reply-ignored')]).toEqual([testCase.name, true]);
      settled.push(order);
    }
    // The crash faults really crashed the services.
    expect([...system.crashes.values()].reduce((sum, count) => sum + count, 0)).toBeGreaterThan(0);
    const coffee = settled.filter((order) => order.items[0].sku === 'SKU-COFFEE');
    expect((await checkInvariants(client, coffee, before)).filter((result) => !result.pass)).toEqual([]);
  }, 240_000);
});

async function waitFor(testCase: Case, done: (order: OrderResponse) => boolean): Promise<OrderResponse> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const order = (await client.order(testCase.orderId))!;
    if (done(order) || Date.now() > deadline) return order;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
