import type { OrderResponse, SagaflowClient } from './api-client.js';

export interface InvariantResult {
  name: string;
  pass: boolean;
  detail: string;
}

export interface StockSnapshot {
  [sku: string]: { available: number; reserved: number };
}

/** Stock of the given SKUs, read through the API. */
export async function snapshotStock(client: SagaflowClient, skus: string[]): Promise<StockSnapshot> {
  const entries = await Promise.all(skus.map(async (sku) => [sku, await client.stock(sku)] as const));
  return Object.fromEntries(entries.map(([sku, item]) => [sku, { available: item.available, reserved: item.reserved }]));
}

/**
 * Checks, through the HTTP API only, what must hold once a batch of orders has settled — whatever crashed,
 * was duplicated or was delayed meanwhile. `before` is the stock of the SKUs the batch uses, taken while
 * nothing else touched them; the batch must be the only activity on those SKUs.
 */
export async function checkInvariants(client: SagaflowClient, orders: OrderResponse[], before: StockSnapshot): Promise<InvariantResult[]> {
  const results: InvariantResult[] = [];
  const check = (name: string, failures: string[]) =>
    results.push({ name, pass: failures.length === 0, detail: failures.length ? failures.slice(0, 5).join('; ') + (failures.length > 5 ? ` (+${failures.length - 5} more)` : '') : 'ok' });

  check(
    'every order reached CONFIRMED or CANCELLED',
    orders.filter((order) => order.status === 'PENDING').map((order) => `${order.orderId} is ${order.saga.status}`),
  );

  const after = await snapshotStock(client, Object.keys(before));
  const confirmedQuantity = new Map<string, number>();
  for (const order of orders.filter((candidate) => candidate.status === 'CONFIRMED')) {
    for (const line of order.items) confirmedQuantity.set(line.sku, (confirmedQuantity.get(line.sku) ?? 0) + line.quantity);
  }
  check(
    'stock conserved: available + reserved unchanged per SKU',
    Object.keys(before)
      .filter((sku) => before[sku].available + before[sku].reserved !== after[sku].available + after[sku].reserved)
      .map((sku) => `${sku}: ${JSON.stringify(before[sku])} → ${JSON.stringify(after[sku])}`),
  );
  check(
    'no oversell: stock held = quantity of confirmed orders, never negative',
    Object.keys(before)
      .filter((sku) => after[sku].reserved - before[sku].reserved !== (confirmedQuantity.get(sku) ?? 0) || after[sku].available < 0)
      .map((sku) => `${sku}: held ${after[sku].reserved - before[sku].reserved}, confirmed ${confirmedQuantity.get(sku) ?? 0}`),
  );

  const money: string[] = [];
  const notices: string[] = [];
  await forEachLimited(orders, 16, async (order) => {
    const payments = await client.payments(order.orderId);
    const charges = payments.filter((payment) => payment.type === 'charge');
    const net = payments.reduce((sum, payment) => sum + (payment.type === 'charge' ? payment.amount : -payment.amount), 0);
    const expected = order.status === 'CONFIRMED' ? order.total : 0;
    if (charges.length > 1) money.push(`${order.orderId} charged ${charges.length} times`);
    if (net !== expected) money.push(`${order.orderId} (${order.status}) nets ${net}, expected ${expected}`);

    const notifications = await client.notifications(order.orderId);
    const expectedKind = order.status === 'CONFIRMED' ? 'confirmation' : 'cancellation';
    if (notifications.length !== 1 || notifications[0].kind !== expectedKind) {
      notices.push(`${order.orderId} (${order.status}) has ${notifications.map((notification) => notification.kind).join(', ') || 'no notification'}`);
    }
  });
  check('money conserved: charges − refunds = total of each confirmed order, nothing charged twice', money);
  check('exactly one final notification per order', notices);
  return results;
}

async function forEachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]);
    }),
  );
}
