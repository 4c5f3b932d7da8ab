// A step that never answers times out: its command is sent again (same message id), then the step fails and
// the saga compensates. A saga that cannot reach its pivot in time is compensated. The test system runs with
// STEP_TIMEOUT_MS=4000, STEP_RESENDS=1 and SAGA_DEADLINE_MS=9000 (global-setup.mjs).
import { api, newCustomer } from './context.js';

const tee = [{ sku: 'SKU-TEE', quantity: 1 }];
const events = (order: Awaited<ReturnType<typeof api.awaitFinal>>, kind: string) => order.saga.history.filter((event) => event.kind === kind);

describe('step timeouts and the saga deadline', () => {
  test('a participant that swallows the first send: the command is sent again with the same id, and the saga completes', async () => {
    const orderId = await api.submit({ customerId: newCustomer(), items: tee, paymentMethod: 'tok_visa', faults: { 'payment.charge': { 'no-reply': 1 } } });
    const order = await api.awaitFinal(orderId, 20_000);
    expect(order.status).toBe('CONFIRMED');
    const sends = order.saga.history.filter((event) => event.kind === 'command-sent' && event.messageType === 'payment.charge');
    expect(sends).toHaveLength(2);
    expect(sends[1].messageId).toBe(sends[0].messageId);
    expect(events(order, 'timed-out')).toHaveLength(1);
    expect(await api.payments(orderId)).toHaveLength(1);
  });

  test('a participant that never replies: timeout, one resend, then the step fails and is compensated', async () => {
    const before = await api.stock('SKU-TEE');
    const orderId = await api.submit({ customerId: newCustomer(), items: tee, paymentMethod: 'tok_visa', faults: { 'payment.charge': { 'no-reply': 99 } } });
    const order = await api.awaitFinal(orderId, 20_000);
    expect(order.status).toBe('CANCELLED');
    expect(order.failureReason).toBe('TIMEOUT: no reply to payment.charge after 2 sends');
    expect(events(order, 'timed-out')).toHaveLength(2);
    // The charge may have happened without a reply: it is refunded anyway, which is a no-op when it did not.
    expect(order.saga.steps.find((step) => step.name === 'charge-payment')).toMatchObject({ status: 'COMPENSATED' });
    const compensations = order.saga.history.filter((event) => event.kind === 'command-sent' && event.outcome === 'compensate');
    expect(compensations.map((event) => event.messageType)).toEqual(['payment.refund', 'inventory.release', 'order.cancel']);
    expect(await api.stock('SKU-TEE')).toEqual(before);
    expect(await api.payments(orderId)).toEqual([]);
  });

  test('a timed-out step that did act is undone: the charge lands after the timeout and is refunded', async () => {
    // The payment service takes 8.5 s: both sends time out (4 s each), then the charge commits.
    const orderId = await api.submit({ customerId: newCustomer(), items: tee, paymentMethod: 'tok_visa', faults: { 'payment.charge': { delay: 8_500 } } });
    const order = await api.awaitFinal(orderId, 20_000);
    expect(order.status).toBe('CANCELLED');
    expect(order.failureReason).toMatch(/^(TIMEOUT|DEADLINE_EXCEEDED)/);
    // Whether the refund ran before or after the late charge, nothing stays taken.
    const net = async () => (await api.payments(orderId)).reduce((sum, payment) => sum + (payment.type === 'charge' ? payment.amount : -payment.amount), 0);
    expect(await net()).toBe(0);
  });

  test('a saga that has not reached its pivot by its deadline is compensated', async () => {
    // Each step is slow but within its own timeout; together they overrun the 9 s deadline.
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
