// The HTTP API's contract: validation, not-found, pagination, health.
import { api, newCustomer } from './context.js';

const post = (body: unknown) =>
  api.fetch(`/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('HTTP API', () => {
  test('POST /orders with bad input is 400 naming each bad field, and starts nothing', async () => {
    const response = await post({ customerId: '', items: [{ sku: 'SKU-TEE', quantity: 0 }, { sku: 'lower', quantity: 1.5 }] });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors: { field: string }[] };
    const fields = body.errors.map((error: { field: string }) => error.field);
    expect(fields).toEqual(expect.arrayContaining(['customerId', 'items.0.quantity', 'items.1.sku', 'items.1.quantity', 'paymentMethod']));
  });

  test('POST /orders rejects unknown fields and an empty item list', async () => {
    const unknown = await post({ customerId: 'c', items: [{ sku: 'SKU-TEE', quantity: 1 }], paymentMethod: 'tok_visa', coupon: 'FREE' });
    expect(unknown.status).toBe(400);
    const empty = await post({ customerId: 'c', items: [], paymentMethod: 'tok_visa' });
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as { errors: { field: string }[] }).errors[0].field).toBe('items');
  });

  test('concurrent orders all start, and a bad one among them is refused alone with 400', async () => {
    // A NUL is refused at the edge: the orders sent beside it must start and confirm all the same.
    const good = Array.from({ length: 12 }, () => ({ customerId: newCustomer(), items: [{ sku: 'SKU-MUG', quantity: 1 }], paymentMethod: 'tok_visa' }));
    const responses = await Promise.all([...good.slice(0, 6), { ...good[0], customerId: 'nul\u0000' }, ...good.slice(6)].map(post));
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 202)).toHaveLength(12);
    expect(statuses[6]).toBe(400);
    const orderIds = await Promise.all(responses.filter((response) => response.status === 202).map(async (response) => ((await response.json()) as { orderId: string }).orderId));
    const finals = await Promise.all(orderIds.map((orderId) => api.awaitFinal(orderId)));
    expect(finals.every((order) => order.status === 'CONFIRMED')).toBe(true);
  });

  test('GET /orders/:id of an unknown order is 404, and of something that is not an order id 400', async () => {
    expect((await api.fetch(`/orders/01a1fffc-0000-7000-8000-000000000000`)).status).toBe(404);
    expect((await api.fetch(`/orders/not-an-id`)).status).toBe(400);
  });

  test('GET /inventory lists the catalog with prices in minor units; an unknown SKU is 404', async () => {
    const catalog = await api.catalog();
    expect(catalog.map((item) => item.sku)).toEqual(expect.arrayContaining(['SKU-COFFEE', 'SKU-MUG', 'SKU-TEE']));
    for (const item of catalog) expect(Number.isInteger(item.price)).toBe(true);
    expect((await api.fetch(`/inventory/SKU-NOSUCH`)).status).toBe(404);
  });

  test('GET /payments needs a valid orderId', async () => {
    expect((await api.fetch(`/payments`)).status).toBe(400);
    expect((await api.fetch(`/payments?orderId=nope`)).status).toBe(400);
  });

  test('GET /orders pages newest first with a cursor, and filters by status', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) {
      ids.push(await api.submit({ customerId: newCustomer(), items: [{ sku: 'SKU-TEE', quantity: 1 }], paymentMethod: 'tok_chargeDeclined' }));
    }
    await Promise.all(ids.map((id) => api.awaitFinal(id)));

    const first = await api.get<{ orders: { orderId: string }[]; nextCursor: string }>('/orders?limit=2&status=CANCELLED');
    expect(first.orders.map((order) => order.orderId)).toEqual([ids[2], ids[1]]);
    const second = await api.get<{ orders: { orderId: string; status: string }[] }>(`/orders?limit=2&status=CANCELLED&cursor=${first.nextCursor}`);
    expect(second.orders[0].orderId).toBe(ids[0]);
    expect(second.orders.every((order) => order.status === 'CANCELLED')).toBe(true);

    const confirmed = await api.get<{ orders: { status: string }[] }>('/orders?status=CONFIRMED&limit=100');
    expect(confirmed.orders.every((order) => order.status === 'CONFIRMED')).toBe(true);
    expect((await api.fetch(`/orders?status=LOST`)).status).toBe(400);
  });

  test('GET /health is 200 naming what it checked', async () => {
    const response = await api.fetch(`/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'ok', info: { postgresql: { status: 'up' }, rabbitmq: { status: 'up' } } });
  });
});
