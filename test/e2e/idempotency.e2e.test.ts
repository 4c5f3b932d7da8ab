// POST /orders with an Idempotency-Key: a repeat (or a race) places one order, never two.
import { randomUUID } from 'node:crypto';
import { eventually } from '../../shared/src/testkit/index.js';
import { api, newCustomer } from './context.js';

// newCustomer() counts per test file, and jest --runInBand runs every file in one process, so its ids repeat
// across files. This suite counts orders per customer, so it makes them unique to the run.
const run = randomUUID().slice(0, 8);
const customer = () => `${newCustomer()}-${run}`;

interface Order {
  customerId: string;
  items: { sku: string; quantity: number }[];
  paymentMethod: string;
}

const orderFor = (customerId: string): Order => ({ customerId, items: [{ sku: 'SKU-TEE', quantity: 1 }], paymentMethod: 'tok_visa' });

/** POST /orders with the headers the test kit's client does not show (Idempotent-Replayed). */
async function post(body: unknown, key?: string) {
  const response = await api.fetch('/orders', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    text,
    body: JSON.parse(text),
    location: response.headers.get('location'),
    replayed: response.headers.get('idempotent-replayed'),
  };
}

/** The customer's orders, from the newest 100 (this suite's orders are the newest: jest runs in band). */
async function ordersOf(customerId: string): Promise<{ orderId: string }[]> {
  const { orders } = await api.get<{ orders: { orderId: string; customerId: string }[] }>('/orders?limit=100');
  return orders.filter((order) => order.customerId === customerId);
}

/** Waits for the order's saga to end, then returns its charges (nothing is charged after the end). */
async function chargesOnceFinal(orderId: string) {
  const order = await eventually(async () => {
    const found = await api.order(orderId);
    return found?.status === 'CONFIRMED' ? found : undefined;
  }, { timeoutMs: 30_000, intervalMs: 100, what: `order ${orderId} to be CONFIRMED` });
  return { order, charges: (await api.payments(orderId)).filter((payment) => payment.type === 'charge') };
}

describe('Idempotency-Key on POST /orders', () => {
  test('the same key and body twice: one order, the second answer replayed', async () => {
    const customerId = customer();
    const key = `key-${customerId}`;
    const first = await post(orderFor(customerId), key);
    // Same request with its fields in another order: it is the validated body that is compared.
    const { paymentMethod, items } = orderFor(customerId);
    const second = await post({ paymentMethod, items, customerId }, key);

    expect(first.status).toBe(202);
    expect(first.replayed).toBeNull();
    // The first answer again, to the byte.
    expect(second).toEqual({ status: 202, text: first.text, body: first.body, location: `/orders/${first.body.orderId}`, replayed: 'true' });
    expect(await ordersOf(customerId)).toEqual([expect.objectContaining({ orderId: first.body.orderId })]);
    const { charges } = await chargesOnceFinal(first.body.orderId);
    expect(charges).toHaveLength(1);
  });

  test('10 racing requests with one key: all 202 with one order id, one saga, one charge', async () => {
    const customerId = customer();
    const key = `race-${customerId}`;
    const answers = await Promise.all(Array.from({ length: 10 }, () => post(orderFor(customerId), key)));

    expect(answers.map((answer) => answer.status)).toEqual(Array(10).fill(202));
    const orderIds = new Set(answers.map((answer) => answer.body.orderId));
    expect(orderIds.size).toBe(1);
    const [orderId] = orderIds;
    expect(new Set(answers.map((answer) => answer.location))).toEqual(new Set([`/orders/${orderId}`]));
    expect(new Set(answers.map((answer) => answer.text)).size).toBe(1);
    expect(answers.filter((answer) => answer.replayed === 'true')).toHaveLength(9);

    expect(await ordersOf(customerId)).toEqual([expect.objectContaining({ orderId })]);
    const { order, charges } = await chargesOnceFinal(orderId);
    expect(order.saga.history.filter((event) => event.kind === 'saga-started')).toHaveLength(1);
    expect(charges).toHaveLength(1);
  });

  test('the same key with a different body is 422, and places nothing', async () => {
    const customerId = customer();
    const key = `changed-${customerId}`;
    const first = await post(orderFor(customerId), key);
    const changed = await post({ ...orderFor(customerId), items: [{ sku: 'SKU-TEE', quantity: 2 }] }, key);

    expect(first.status).toBe(202);
    expect(changed.status).toBe(422);
    expect(changed.body).toEqual({
      statusCode: 422,
      error: 'Unprocessable Entity',
      message: expect.stringMatching(/^Idempotency-Key .* was used with a different request$/),
    });
    expect(changed.location).toBeNull();
    expect(await ordersOf(customerId)).toEqual([expect.objectContaining({ orderId: first.body.orderId })]);
  });

  test('keys are per customer: two customers using the same key place two orders', async () => {
    const [ada, bob] = [customer(), customer()];
    const key = `shared-${ada}`;
    const forAda = await post(orderFor(ada), key);
    const forBob = await post(orderFor(bob), key);

    expect([forAda.status, forBob.status]).toEqual([202, 202]);
    expect(forBob.replayed).toBeNull();
    expect(forBob.body.orderId).not.toBe(forAda.body.orderId);
    expect(await ordersOf(ada)).toEqual([expect.objectContaining({ orderId: forAda.body.orderId })]);
    expect(await ordersOf(bob)).toEqual([expect.objectContaining({ orderId: forBob.body.orderId })]);
  });

  test('without a key, the same body twice places two orders', async () => {
    const customerId = customer();
    const first = await post(orderFor(customerId));
    const second = await post(orderFor(customerId));

    expect([first.status, second.status]).toEqual([202, 202]);
    expect(second.replayed).toBeNull();
    expect(second.body.orderId).not.toBe(first.body.orderId);
    expect(await ordersOf(customerId)).toHaveLength(2);
  });

  test.each([
    ['longer than 255 characters', 'k'.repeat(300)],
    ['not ASCII', 'café'],
  ])('a key %s is 400 naming the header, and places nothing', async (_, key) => {
    const customerId = customer();
    const answer = await post(orderFor(customerId), key);

    expect(answer.status).toBe(400);
    expect(answer.body.errors).toEqual([expect.objectContaining({ field: 'Idempotency-Key' })]);
    expect(await ordersOf(customerId)).toEqual([]);
  });
});
