// The inbox tells a redelivery from a different command that reuses a message id by a hash of the body:
// the same command must hash alike however its keys came ordered (jsonb reorders them), others must not.
import { bodyHashOf } from './inbox.js';

const reserve = { type: 'inventory.reserve', payload: { orderId: 'o-1', items: [{ sku: 'A', quantity: 1 }] } };

test('the same command hashes alike, whatever the order of its keys', () => {
  expect(bodyHashOf({ type: reserve.type, payload: { items: [{ quantity: 1, sku: 'A' }], orderId: 'o-1' } })).toBe(bodyHashOf(reserve));
});

test.each([
  ['another quantity', { ...reserve, payload: { orderId: 'o-1', items: [{ sku: 'A', quantity: 2 }] } }],
  ['lines in another order', { ...reserve, payload: { orderId: 'o-1', items: [{ sku: 'B', quantity: 1 }, { sku: 'A', quantity: 1 }] } }],
  ['another type', { ...reserve, type: 'inventory.release' }],
  ['a value of another JSON type', { ...reserve, payload: { orderId: 'o-1', items: [{ sku: 'A', quantity: '1' }] } }],
])('%s hashes otherwise', (_, other) => {
  expect(bodyHashOf(other)).not.toBe(bodyHashOf(reserve));
});
