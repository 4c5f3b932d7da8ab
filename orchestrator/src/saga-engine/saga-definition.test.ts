// The builder is where a saga's shape is checked once, at startup: a saga that could compensate past its
// pivot, or that names a step twice (replies are matched to steps by name), must not be buildable.
import { InventoryCommands, NotificationCommands, OrderCommands, PaymentCommands } from '../../../shared/src/contracts/index.js';
import { orderSaga } from '../order-saga/order-saga.definition.js';
import { defineSaga } from './saga-definition.js';

type Data = { orderId: string };
const orderId = '0190a7f2-0000-7000-8000-000000000001';

describe('defineSaga', () => {
  test('rejects a step name used twice', () => {
    const builder = defineSaga<Data>('dup').step('create').invoke(OrderCommands.create, (data) => ({ orderId: data.orderId, customerId: 'c', items: [] }));
    expect(() => builder.step('create')).toThrow('saga dup: step create defined twice');
  });

  test('rejects an after-compensation step named like a regular step', () => {
    const builder = defineSaga<Data>('dup-after')
      .step('notify')
      .invoke(NotificationCommands.send, (data) => ({ orderId: data.orderId, customerId: 'c', kind: 'confirmation' as const }));
    expect(() => builder.afterCompensation('notify')).toThrow('saga dup-after: step notify defined twice');
  });

  test('rejects a compensation on a step after the pivot', () => {
    const builder = defineSaga<Data>('late-undo')
      .step('create')
      .invoke(OrderCommands.create, (data) => ({ orderId: data.orderId, customerId: 'c', items: [] }))
      .pivot()
      .step('reserve')
      .invoke(InventoryCommands.reserve, (data) => ({ orderId: data.orderId, items: [] }))
      .compensateWith(InventoryCommands.release, (data) => ({ orderId: data.orderId }));
    expect(() => builder.build()).toThrow('saga late-undo: step reserve is after the pivot and cannot have a compensation');
  });

  test('rejects a saga without steps', () => {
    expect(() => defineSaga<Data>('empty').build()).toThrow('saga empty has no steps');
    // An after-compensation step alone is not a saga either.
    expect(() =>
      defineSaga<Data>('only-after')
        .afterCompensation('notify')
        .invoke(NotificationCommands.send, (data) => ({ orderId: data.orderId, customerId: 'c', kind: 'cancellation' as const }))
        .build(),
    ).toThrow('saga only-after has no steps');
  });

  test('builds steps in declaration order with their commands, folds and compensations', () => {
    const fold = (data: Data) => data;
    const saga = defineSaga<Data>('tiny')
      .step('reserve')
      .invoke(InventoryCommands.reserve, (data) => ({ orderId: data.orderId, items: [{ sku: 'ABC-1', quantity: 1 }] }))
      .onSuccess(fold)
      .compensateWith(InventoryCommands.release, (data) => ({ orderId: data.orderId }))
      .step('notify')
      .invoke(NotificationCommands.send, (data) => ({ orderId: data.orderId, customerId: 'c', kind: 'confirmation' as const }))
      .build();

    expect(saga.name).toBe('tiny');
    expect(saga.steps.map((step) => step.name)).toEqual(['reserve', 'notify']);
    expect(saga.steps[0].invoke.command).toBe(InventoryCommands.reserve);
    expect(saga.steps[0].onSuccess).toBe(fold);
    expect(saga.steps[0].compensation!.command).toBe(InventoryCommands.release);
    expect(saga.steps[0].invoke.build({ orderId }, { failureReason: null })).toEqual({ orderId, items: [{ sku: 'ABC-1', quantity: 1 }] });
    expect(saga.steps[1].compensation).toBeUndefined();
    // Without a pivot nothing is after it.
    expect(saga.steps.every((step) => !step.afterPivot)).toBe(true);
    expect(saga.afterCompensation).toBeUndefined();
  });
});

describe('the order saga', () => {
  test('runs create-order, reserve-inventory, charge-payment, confirm-order, notify in that order', () => {
    expect(orderSaga.name).toBe('order');
    expect(orderSaga.steps.map((step) => step.name)).toEqual(['create-order', 'reserve-inventory', 'charge-payment', 'confirm-order', 'notify']);
    expect(orderSaga.steps.map((step) => step.invoke.command)).toEqual([
      OrderCommands.create,
      InventoryCommands.reserve,
      PaymentCommands.charge,
      OrderCommands.confirm,
      NotificationCommands.send,
    ]);
  });

  test('undoes create/reserve/charge with cancel/release/refund, and nothing after the pivot', () => {
    expect(orderSaga.steps.map((step) => step.compensation?.command)).toEqual([
      OrderCommands.cancel,
      InventoryCommands.release,
      PaymentCommands.refund,
      undefined,
      undefined,
    ]);
  });

  test('the pivot sits after charge-payment: confirm-order and notify are afterPivot, the rest are not', () => {
    expect(Object.fromEntries(orderSaga.steps.map((step) => [step.name, step.afterPivot]))).toEqual({
      'create-order': false,
      'reserve-inventory': false,
      'charge-payment': false,
      'confirm-order': true,
      notify: true,
    });
  });

  test('after compensating it sends a cancellation notification, itself never compensated', () => {
    const after = orderSaga.afterCompensation!;
    expect(after).toBeDefined();
    expect(after.name).toBe('notify-cancellation');
    expect(after.invoke.command).toBe(NotificationCommands.send);
    expect(after.afterPivot).toBe(true);
    expect(after.compensation).toBeUndefined();
    // It is not one of the regular steps, so a successful saga never runs it.
    expect(orderSaga.steps.map((step) => step.name)).not.toContain('notify-cancellation');
  });

  test('only reserve-inventory folds its result into the data', () => {
    expect(orderSaga.steps.filter((step) => step.onSuccess).map((step) => step.name)).toEqual(['reserve-inventory']);
  });
});
