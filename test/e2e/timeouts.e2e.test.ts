// Time, as it now works: a command the broker holds is never sent again because its reply is late. The
// participant limits its own work on an attempt (the step's work timeout) and retries it; only the saga's
// deadline cancels an order, and the command it leaves behind expires unexecuted. The test system runs with
// STEP_TIMEOUT_MS=4000 and SAGA_DEADLINE_MS=9000 (global-setup.mjs).
import { api, newCustomer } from './context.js';

const tee = [{ sku: 'SKU-TEE', quantity: 1 }];
type Order = Awaited<ReturnType<typeof api.awaitFinal>>;
const events = (order: Order, kind: string) => order.saga.history.filter((event) => event.kind === kind);
const sends = (order: Order, type: string) => events(order, 'command-sent').filter((event) => event.messageType === type);

describe('work timeouts and the saga deadline', () => {
  test('a participant that hangs on an attempt gives it up after the work timeout and retries it: the saga sends once and completes', async () => {
    const orderId = await api.submit({ customerId: newCustomer(), items: tee, paymentMethod: 'tok_visa', faults: { 'payment.charge': { 'no-reply': 1 } } });
    const order = await api.awaitFinal(orderId, 20_000);
    expect(order.status).toBe('CONFIRMED');
    expect(sends(order, 'payment.charge')).toHaveLength(1);
    const charge = order.saga.steps.find((step) => step.name === 'charge-payment')!;
    expect(charge.attempts).toBe(2);
    expect(charge.failures[0].error).toMatch(/^WORK_TIMEOUT: payment.charge did not finish within 4000 ms/);
    // The reply tells the wait in the queue apart from the work, which here includes the hung attempt.
    const applied = events(order, 'reply-applied').find((event) => event.step === 'charge-payment')!;
    expect(applied.workMs).toBeGreaterThanOrEqual(4_000);
    expect(applied.queuedMs).toBeLessThan(4_000);
    expect(await api.payments(orderId)).toHaveLength(1);
  });

  test('a participant that never answers: the deadline cancels the order, naming the step and its wait, and the command expires unexecuted', async () => {
    const before = await api.stock('SKU-TEE');
    const orderId = await api.submit({ customerId: newCustomer(), items: tee, paymentMethod: 'tok_visa', faults: { 'payment.charge': { 'no-reply': 99 } } });
    const order = await api.awaitFinal(orderId, 30_000);
    expect(order.status).toBe('CANCELLED');
    expect(order.failureReason).toMatch(/^DEADLINE_EXCEEDED: charge-payment's payment.charge went unanswered for [\d.]+ s .*within 9000 ms$/);
    expect(sends(order, 'payment.charge')).toHaveLength(1);
    expect(events(order, 'deadline-exceeded')).toHaveLength(1);
    // The charge may have acted without a reply as far as the saga knows: it is refunded anyway (a no-op here).
    expect(order.saga.steps.find((step) => step.name === 'charge-payment')).toMatchObject({ status: 'COMPENSATED' });
    const compensations = events(order, 'command-sent').filter((event) => event.outcome === 'compensate');
    expect(compensations.map((event) => event.messageType)).toEqual(['payment.refund', 'inventory.release', 'order.cancel']);
    expect(await api.stock('SKU-TEE')).toEqual(before);
    // Its next attempt came after the deadline: dead-lettered as expired, never run.
    const letter = await api.awaitDeadLetter((letter) => letter.sagaId === order.saga.id && letter.type === 'payment.charge', 30_000);
    expect(letter).toMatchObject({ reason: 'expired', queue: 'payment.commands.dlq' });
    expect(await api.payments(orderId)).toEqual([]);
  });

  test('a step slower than its work timeout never commits: each attempt is given up, and the deadline cancels the order with nothing charged', async () => {
    const orderId = await api.submit({ customerId: newCustomer(), items: tee, paymentMethod: 'tok_visa', faults: { 'payment.charge': { delay: 8_500 } } });
    const order = await api.awaitFinal(orderId, 30_000);
    expect(order.status).toBe('CANCELLED');
    expect(order.failureReason).toMatch(/^DEADLINE_EXCEEDED/);
    expect(sends(order, 'payment.charge')).toHaveLength(1);
    expect(await api.payments(orderId)).toEqual([]);
  });

  test('a saga that has not reached its pivot by its deadline is compensated', async () => {
    // Each step is slow but within its work timeout; together they overrun the 9 s deadline.
    const slow = { delay: 3_500 };
    const orderId = await api.submit({
      customerId: newCustomer(),
      items: tee,
      paymentMethod: 'tok_visa',
      faults: { 'order.create': slow, 'inventory.reserve': slow, 'payment.charge': slow },
    });
    const order = await api.awaitFinal(orderId, 30_000);
    expect(order.status).toBe('CANCELLED');
    expect(order.failureReason).toMatch(/^DEADLINE_EXCEEDED/);
    expect(events(order, 'deadline-exceeded')).toHaveLength(1);
  });
});
