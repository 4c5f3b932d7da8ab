// The order saga end to end, across the five real processes, RabbitMQ and PostgreSQL.
import { api, newCustomer } from './context.js';

const totalCharged = async (orderId: string) => {
  const payments = await api.payments(orderId);
  return payments.reduce((sum, payment) => sum + (payment.type === 'charge' ? payment.amount : -payment.amount), 0);
};

describe('order saga', () => {
  test('a successful order ends CONFIRMED: stock taken, charged once, notified once', async () => {
    const before = await api.stock('SKU-COFFEE');
    const { status, body, location } = await api.placeOrder({
      customerId: newCustomer(),
      items: [{ sku: 'SKU-COFFEE', quantity: 2 }],
      paymentMethod: 'tok_visa',
    });
    expect(status).toBe(202);
    expect(body.status).toBe('PENDING');
    expect(location).toBe(`/orders/${body.orderId}`);

    const order = await api.awaitFinal(body.orderId);
    expect(order.status).toBe('CONFIRMED');
    expect(order.saga.status).toBe('COMPLETED');
    expect(order.total).toBe(2 * before.price);
    expect(order.saga.steps.map((step) => [step.name, step.status, step.attempts])).toEqual([
      ['create-order', 'SUCCEEDED', 1],
      ['reserve-inventory', 'SUCCEEDED', 1],
      ['charge-payment', 'SUCCEEDED', 1],
      ['confirm-order', 'SUCCEEDED', 1],
      ['notify', 'SUCCEEDED', 1],
      ['notify-cancellation', 'SKIPPED', 0],
    ]);
    // Every command sent once, every reply applied once, nothing stale.
    expect(order.saga.history.filter((event) => event.kind === 'command-sent')).toHaveLength(5);
    expect(order.saga.history.filter((event) => event.kind === 'reply-applied')).toHaveLength(5);
    expect(order.saga.history.filter((event) => event.kind === 'reply-ignored')).toHaveLength(0);

    const after = await api.stock('SKU-COFFEE');
    expect(after.available).toBe(before.available - 2);
    expect(after.reserved).toBe(before.reserved + 2);
    const payments = await api.payments(order.orderId);
    expect(payments).toEqual([expect.objectContaining({ type: 'charge', amount: order.total, currency: 'EUR', orderId: order.orderId })]);
    const notifications = await api.notifications(order.orderId);
    expect(notifications).toEqual([expect.objectContaining({ kind: 'confirmation', orderId: order.orderId })]);
  });

  test('out of stock ends CANCELLED with the reason: nothing charged, nothing held', async () => {
    const before = await api.stock('SKU-SOLDOUT');
    const orderId = await api.submit({ customerId: newCustomer(), items: [{ sku: 'SKU-SOLDOUT', quantity: 1 }], paymentMethod: 'tok_visa' });

    const order = await api.awaitFinal(orderId);
    expect(order.status).toBe('CANCELLED');
    expect(order.saga.status).toBe('COMPENSATED');
    expect(order.failureReason).toMatch(/^OUT_OF_STOCK/);
    expect(order.saga.steps.find((step) => step.name === 'reserve-inventory')?.status).toBe('FAILED');
    expect(order.saga.steps.find((step) => step.name === 'create-order')?.status).toBe('COMPENSATED');
    expect(order.saga.steps.find((step) => step.name === 'charge-payment')?.status).toBe('SKIPPED');
    expect(await api.payments(orderId)).toEqual([]);
    expect(await api.stock('SKU-SOLDOUT')).toEqual(before);
    expect(await api.notifications(orderId)).toEqual([expect.objectContaining({ kind: 'cancellation', reason: order.failureReason })]);
  });

  test('a partly available order holds nothing: the lines already reserved are rolled back', async () => {
    const coffee = await api.stock('SKU-COFFEE');
    const orderId = await api.submit({
      customerId: newCustomer(),
      items: [
        { sku: 'SKU-COFFEE', quantity: 1 },
        { sku: 'SKU-SOLDOUT', quantity: 1 },
      ],
      paymentMethod: 'tok_visa',
    });
    expect((await api.awaitFinal(orderId)).status).toBe('CANCELLED');
    expect(await api.stock('SKU-COFFEE')).toEqual(coffee);
  });

  test('a declined payment ends CANCELLED: reservation released, order cancelled, customer told why', async () => {
    const before = await api.stock('SKU-MUG');
    const orderId = await api.submit({ customerId: newCustomer(), items: [{ sku: 'SKU-MUG', quantity: 3 }], paymentMethod: 'tok_chargeDeclined' });

    const order = await api.awaitFinal(orderId);
    expect(order.status).toBe('CANCELLED');
    expect(order.failureReason).toBe('PAYMENT_DECLINED: card declined');
    expect(order.saga.steps.map((step) => [step.name, step.status])).toEqual([
      ['create-order', 'COMPENSATED'],
      ['reserve-inventory', 'COMPENSATED'],
      ['charge-payment', 'FAILED'],
      ['confirm-order', 'SKIPPED'],
      ['notify', 'SKIPPED'],
      ['notify-cancellation', 'SUCCEEDED'],
    ]);
    // Compensations ran in reverse order: release-inventory before cancel-order.
    const compensations = order.saga.history.filter((event) => event.kind === 'command-sent' && event.outcome === 'compensate');
    expect(compensations.map((event) => event.messageType)).toEqual(['inventory.release', 'order.cancel']);

    expect(await api.stock('SKU-MUG')).toEqual(before);
    expect(await totalCharged(orderId)).toBe(0);
    expect(await api.payments(orderId)).toEqual([]);
    expect(await api.notifications(orderId)).toEqual([
      expect.objectContaining({ kind: 'cancellation', reason: 'PAYMENT_DECLINED: card declined' }),
    ]);
  });

  test('an unknown SKU is accepted, then CANCELLED with the reason', async () => {
    const orderId = await api.submit({ customerId: newCustomer(), items: [{ sku: 'SKU-NOSUCH', quantity: 1 }], paymentMethod: 'tok_visa' });
    const order = await api.awaitFinal(orderId);
    expect(order.status).toBe('CANCELLED');
    expect(order.failureReason).toBe('UNKNOWN_SKU: SKU-NOSUCH is not in the catalog');
  });

  test('20 concurrent orders for the 5 units of one SKU: exactly 5 confirmed, stock never negative', async () => {
    const initial = await api.stock('SKU-LIMITED');
    expect(initial).toMatchObject({ available: 5, reserved: 0 });

    let lowest = initial.available;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        lowest = Math.min(lowest, (await api.stock('SKU-LIMITED')).available);
      }
    })();
    const orderIds = await Promise.all(
      Array.from({ length: 20 }, () =>
        api.submit({ customerId: newCustomer(), items: [{ sku: 'SKU-LIMITED', quantity: 1 }], paymentMethod: 'tok_visa' }),
      ),
    );
    const orders = await Promise.all(orderIds.map((orderId) => api.awaitFinal(orderId)));
    watching = false;
    await watcher;

    const confirmed = orders.filter((order) => order.status === 'CONFIRMED');
    expect(confirmed).toHaveLength(5);
    expect(orders.filter((order) => order.status === 'CANCELLED')).toHaveLength(15);
    expect(orders.every((order) => order.status === 'CONFIRMED' || order.failureReason?.startsWith('OUT_OF_STOCK'))).toBe(true);
    expect(lowest).toBeGreaterThanOrEqual(0);
    expect(await api.stock('SKU-LIMITED')).toMatchObject({ available: 0, reserved: 5 });
    for (const order of confirmed) expect(await totalCharged(order.orderId)).toBe(initial.price);
  });
});
