// A participant that hangs (SIGSTOP: its connections stay open, it answers nothing) delays orders and never
// cancels them: the saga trusts the broker with the commands it confirmed and sends nothing again. Only the
// business deadline cancels an order, and the command it leaves behind expires unexecuted. On a system of
// the suite's own, with the product's timers (STEP_TIMEOUT_MS 30 s, SAGA_DEADLINE_MS 5 min).
//
// OUTAGE_PARTICIPANT=order|inventory|notification hangs another participant instead of payment (the
// issue's note has those runs); OUTAGE_SECONDS and OUTAGE_ORDERS change the length (120 s, 60 orders).
import type { ProcessName } from '../../shared/src/launcher/processes.js';
import { checkInvariants, type DeadLetterRow, eventually, type OrderResponse, sampleSum, scrape, snapshotStock } from '../../shared/src/testkit/index.js';
import { type SuiteSystem, startSuiteSystem } from './suite-system.js';

const PARTICIPANT = (process.env.OUTAGE_PARTICIPANT ?? 'payment') as ProcessName;
const HANG_MS = Number(process.env.OUTAGE_SECONDS ?? 120) * 1_000;
const ORDERS = Number(process.env.OUTAGE_ORDERS ?? 60);
const SKUS = ['SKU-COFFEE', 'SKU-MUG', 'SKU-TEE'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let suite: SuiteSystem;
afterEach(async () => {
  // A test that failed half-way must not leave a process frozen for the next one.
  suite?.isolated.system.resume(PARTICIPANT);
  await suite?.dispose();
}, 60_000);

/** Inbox duplicates answered so far, over every process (none restarts here, so the counters hold). */
async function duplicates(): Promise<number> {
  const { system } = suite.isolated;
  const counts = await Promise.all(['order', 'inventory', 'payment', 'notification'].map(async (name) => sampleSum(await scrape(system.url(name as ProcessName)), 'sagaflow_inbox_duplicates_total')));
  return counts.reduce((sum, count) => sum + count, 0);
}

/** Places `count` orders at one a second (open loop); resolves with their ids. */
async function placeAtOnePerSecond(count: number, prefix: string): Promise<string[]> {
  const { client } = suite.isolated;
  const started = Date.now();
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      await sleep(Math.max(0, started + index * 1_000 - Date.now()));
      return client.submit({ customerId: `${prefix}-${index}`, items: [{ sku: SKUS[index % SKUS.length], quantity: 1 }], paymentMethod: 'tok_visa' });
    }),
  );
}

test(`${PARTICIPANT} hung for ${HANG_MS / 1_000} s while ${ORDERS} orders arrive: every order confirms once it resumes, nothing sent again`, async () => {
  suite = await startSuiteSystem('outage', {});
  const { client, system } = suite.isolated;
  const before = await snapshotStock(client, SKUS);
  const duplicatesBefore = await duplicates();
  const hungAt = Date.now();
  system.pause(PARTICIPANT);
  const orderIds = await placeAtOnePerSecond(ORDERS, 'outage');
  await sleep(Math.max(0, hungAt + HANG_MS - Date.now()));
  system.resume(PARTICIPANT);
  const resumedAt = Date.now();
  const orders: OrderResponse[] = [];
  for (const orderId of orderIds) orders.push(await client.awaitFinal(orderId, 120_000));
  const waits = orders.flatMap((order) => order.saga.history.filter((event) => event.kind === 'reply-applied' && event.queuedMs !== null).map((event) => event.queuedMs!));
  console.info(
    `${PARTICIPANT} hung ${HANG_MS / 1_000} s, ${ORDERS} orders: ${orders.filter((order) => order.status === 'CONFIRMED').length} confirmed, ` +
      `all within ${((Date.now() - resumedAt) / 1_000).toFixed(1)} s of the resume; inbox duplicates ${(await duplicates()) - duplicatesBefore}; ` +
      `longest wait of a command in its queue ${(Math.max(...waits) / 1_000).toFixed(1)} s`,
  );

  expect(orders.filter((order) => order.status !== 'CONFIRMED').map((order) => `${order.orderId}: ${order.status} ${order.failureReason}`)).toEqual([]);
  // No command was sent twice by the saga; the inbox answered at most the ones the hung process held.
  const resent = orders.flatMap((order) => order.saga.history.filter((event) => event.kind === 'command-sent' && event.detail));
  expect(resent.map((event) => `${event.messageType}: ${event.detail}`)).toEqual([]);
  expect((await duplicates()) - duplicatesBefore).toBeLessThanOrEqual(ORDERS);
  // Nothing charged twice, nothing charged and refunded.
  const refunded = [];
  for (const order of orders) if ((await client.payments(order.orderId)).some((payment) => payment.type === 'refund')) refunded.push(order.orderId);
  expect(refunded).toEqual([]);
  expect((await checkInvariants(client, orders, before)).filter((result) => !result.pass)).toEqual([]);
}, HANG_MS + 300_000);

test(`${PARTICIPANT} hung past the deadline: the waiting orders are cancelled naming the step and its wait, and their commands expire unexecuted`, async () => {
  // A short deadline: the hang outlasts it by far.
  suite = await startSuiteSystem('outage-deadline', { SAGA_DEADLINE_MS: '15000' });
  const { client, system } = suite.isolated;
  const before = await snapshotStock(client, SKUS);
  system.pause('payment');
  const orderIds = await placeAtOnePerSecond(8, 'deadline');
  // Past the deadline each saga gives the charge up and starts undoing (the refund waits for payment too).
  for (const orderId of orderIds) {
    const giving = await eventually(async () => ((await client.order(orderId))!.failureReason ? client.order(orderId) : undefined), { timeoutMs: 60_000, what: `order ${orderId} past its deadline` });
    expect(giving!.failureReason).toMatch(/^DEADLINE_EXCEEDED: charge-payment's payment.charge went unanswered for \d+\.\d s/);
  }
  // Payment comes back with the expired charges still queued, and the refunds behind them.
  system.resume('payment');
  const orders: OrderResponse[] = [];
  for (const orderId of orderIds) orders.push(await client.awaitFinal(orderId, 60_000));
  expect(orders.map((order) => order.status)).toEqual(orders.map(() => 'CANCELLED'));
  await Promise.all(orders.map((order) => client.awaitDeadLetter((letter) => letter.sagaId === order.saga.id && letter.type === 'payment.charge', 60_000)));
  const letters = (await client.deadLetters<DeadLetterRow>()).filter((letter) => letter.type === 'payment.charge' && orders.some((order) => order.saga.id === letter.sagaId));
  expect(letters.map((letter) => letter.reason)).toEqual(orders.map(() => 'expired'));
  // Nothing charged, nothing held: each refund found no charge (and voided the order).
  for (const order of orders) expect(await client.payments(order.orderId)).toEqual([]);
  expect(await snapshotStock(client, SKUS)).toEqual(before);
}, 180_000);
