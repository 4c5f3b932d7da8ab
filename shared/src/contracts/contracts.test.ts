// The contracts are the one registry every consumer validates against: a contract missing from it, or
// filed under the wrong service, is a message nobody handles; a loose schema lets bad money through.
import {
  COMMANDS,
  Currency,
  failed,
  Id,
  InventoryCommands,
  InventoryQueries,
  NotificationCommands,
  NotificationQueries,
  OrderCommands,
  parseReplyType,
  PaymentCommands,
  PaymentQueries,
  QUERIES,
  replyType,
  SERVICES,
  isId,
  Sku,
  succeeded,
} from './index.js';

const allCommands = [OrderCommands, InventoryCommands, PaymentCommands, NotificationCommands].flatMap((group) => Object.values(group));
const allQueries = [InventoryQueries, PaymentQueries, NotificationQueries].flatMap((group) => Object.values(group));
const orderId = '0190a7f2-0000-7000-8000-000000000001';

describe('registries', () => {
  test('COMMANDS holds every command contract, keyed by its type, and nothing else', () => {
    expect(COMMANDS.size).toBe(allCommands.length);
    for (const contract of allCommands) expect(COMMANDS.get(contract.type)).toBe(contract);
  });

  test('QUERIES holds every query contract, keyed by its type, and nothing else', () => {
    expect(QUERIES.size).toBe(allQueries.length);
    for (const contract of allQueries) expect(QUERIES.get(contract.type)).toBe(contract);
  });

  test('message types are unique across commands and queries (a duplicate would shadow one in the map)', () => {
    const types = [...allCommands, ...allQueries].map((contract) => contract.type);
    expect(new Set(types).size).toBe(types.length);
  });

  test('each contract belongs to the service named by the first segment of its type', () => {
    for (const contract of [...allCommands, ...allQueries]) {
      expect(contract.service).toBe(contract.type.split('.')[0]);
      expect(SERVICES).toContain(contract.service);
    }
  });

  test('commands and queries say which kind they are', () => {
    for (const contract of allCommands) expect(contract.kind).toBe('command');
    for (const contract of allQueries) expect(contract.kind).toBe('query');
  });

  test('the registry knows the commands the order saga sends', () => {
    expect([...COMMANDS.keys()].sort()).toEqual(
      ['inventory.release', 'inventory.reserve', 'notification.send', 'order.cancel', 'order.confirm', 'order.create', 'payment.charge', 'payment.refund'].sort(),
    );
  });
});

describe('reply types', () => {
  test('parseReplyType splits a success reply type', () => {
    expect(parseReplyType('inventory.reserve.succeeded')).toEqual({ commandType: 'inventory.reserve', outcome: 'succeeded' });
  });

  test('parseReplyType splits a failure reply type', () => {
    expect(parseReplyType('payment.charge.failed')).toEqual({ commandType: 'payment.charge', outcome: 'failed' });
  });

  test.each(['inventory.reserve', 'inventory.reserve.done', 'inventory.reserve.succeeded.extra', 'succeeded', '.succeeded', '', 'inventory.reserve.Succeeded'])(
    'parseReplyType(%j) is undefined: not a reply type',
    (type) => {
      expect(parseReplyType(type)).toBeUndefined();
    },
  );

  test('replyType and parseReplyType round trip for every command', () => {
    for (const contract of allCommands) {
      for (const outcome of ['succeeded', 'failed'] as const) {
        expect(parseReplyType(replyType(contract, outcome))).toEqual({ commandType: contract.type, outcome });
      }
    }
  });

  test('succeeded / failed build the two reply shapes', () => {
    expect(succeeded({ status: 'CONFIRMED' })).toEqual({ outcome: 'succeeded', result: { status: 'CONFIRMED' } });
    expect(failed('OUT_OF_STOCK', 'no ABC-1 left')).toEqual({ outcome: 'failed', failure: { code: 'OUT_OF_STOCK', reason: 'no ABC-1 left' } });
  });
});

describe('payload schemas', () => {
  const charge = { orderId, customerId: 'c-1', amount: 1250, currency: 'EUR', paymentMethod: 'card' };

  test('a valid charge passes (the baseline the rejections below differ from)', () => {
    expect(PaymentCommands.charge.payload.safeParse(charge).success).toBe(true);
  });

  // Money is an integer number of minor units: 12.50 EUR is 1250, never 12.5.
  test.each([
    ['a fractional amount', 12.5],
    ['a negative amount', -1],
    ['an amount as a string', '1250'],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('charge rejects %s', (_, amount) => {
    expect(PaymentCommands.charge.payload.safeParse({ ...charge, amount }).success).toBe(false);
  });

  test('order.confirm and the reservation result also reject non-integer and negative totals', () => {
    for (const total of [9.99, -100]) {
      expect(OrderCommands.confirm.payload.safeParse({ orderId, total, currency: 'EUR' }).success).toBe(false);
      expect(InventoryCommands.reserve.result.safeParse({ lines: [], total, currency: 'EUR' }).success).toBe(false);
    }
    expect(OrderCommands.confirm.payload.safeParse({ orderId, total: 0, currency: 'EUR' }).success).toBe(true);
  });

  test.each(['eur', 'EURO', 'E1R', ''])('currency %j is not an ISO 4217 code', (currency) => {
    expect(Currency.safeParse(currency).success).toBe(false);
    expect(PaymentCommands.charge.payload.safeParse({ ...charge, currency }).success).toBe(false);
  });

  // Labels keep the test names short for the 64/65-character SKUs.
  const skuCase = (sku: string, label = JSON.stringify(sku)) => ({ sku, label });

  test.each([skuCase('ABC-1'), skuCase('A'), skuCase('0-9'), skuCase('X'.repeat(64), 'of 64 characters')])('SKU $label is valid', ({ sku }) => {
    expect(Sku.safeParse(sku).success).toBe(true);
  });

  test.each([skuCase('abc-1'), skuCase('-ABC'), skuCase('AB C'), skuCase('AB_C'), skuCase(''), skuCase('X'.repeat(65), 'of 65 characters')])('SKU $label is rejected', ({ sku }) => {
    expect(Sku.safeParse(sku).success).toBe(false);
    expect(InventoryCommands.reserve.payload.safeParse({ orderId, items: [{ sku, quantity: 1 }] }).success).toBe(false);
  });

  test('an order line needs a positive integer quantity of at most 1000', () => {
    const reserve = (quantity: number) => InventoryCommands.reserve.payload.safeParse({ orderId, items: [{ sku: 'ABC-1', quantity }] }).success;
    expect(reserve(1)).toBe(true);
    expect(reserve(1000)).toBe(true);
    expect(reserve(0)).toBe(false);
    expect(reserve(1.5)).toBe(false);
    expect(reserve(1001)).toBe(false);
  });

  test('an order cannot be created without lines or with an order id that is not a UUID', () => {
    const line = { sku: 'ABC-1', quantity: 1 };
    expect(OrderCommands.create.payload.safeParse({ orderId, customerId: 'c-1', items: [line] }).success).toBe(true);
    expect(OrderCommands.create.payload.safeParse({ orderId, customerId: 'c-1', items: [] }).success).toBe(false);
    expect(OrderCommands.create.payload.safeParse({ orderId: 'order-1', customerId: 'c-1', items: [line] }).success).toBe(false);
  });
});

describe('message ids', () => {
  test('are UUIDv7, unique, and ordered by the millisecond they were made in', async () => {
    const { newMessageId } = await import('./envelope.js');
    const before = Date.now();
    const ids = Array.from({ length: 10_000 }, () => newMessageId());
    const after = Date.now();
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const millis = ids.map((id) => parseInt(id.replace(/-/g, '').slice(0, 12), 16));
    expect(millis.every((ms, i) => ms >= before && ms <= after && (i === 0 || ms >= millis[i - 1]))).toBe(true);
  });
});

test('isId, the quick check of every message id, agrees with the Id schema', () => {
  const samples: unknown[] = [orderId, orderId.toUpperCase(), '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff'];
  samples.push('0190a7f2-0000-9000-8000-000000000001', '0190a7f2-0000-7000-c000-000000000001', `${orderId} `, orderId.slice(1), '', 42, null, undefined, {});
  for (const value of samples) expect([value, isId(value)]).toEqual([value, Id.safeParse(value).success]);
});
