// The saga state machine is pure: (definition, state, reply) → (next state, command to send). These tests
// drive it reply by reply, for the real order saga and a tiny made-up one, and check both what it sends
// and what it records — the recorded state is what the orchestrator persists and what operators see.
import { FINAL_SAGA_STATUSES, InventoryCommands, NotificationCommands, OrderCommands, PaymentCommands, type CommandContract } from '../../../shared/src/contracts/index.js';
import { orderSaga } from '../order-saga/order-saga.definition.js';
import type { OrderSagaData } from '../order-saga/order-saga.data.js';
import { defineSaga, type SagaDefinition } from './saga-definition.js';
import { applyReply, packState, startSaga, unpackState, type Reply, type SagaState, type StepState, type Transition } from './saga-state.js';

const orderId = '0190a7f2-0000-7000-8000-000000000001';
const chargeId = '0190a7f2-0000-7000-8000-0000000000c1';
const notificationId = '0190a7f2-0000-7000-8000-0000000000e1';

/** Frozen all the way down: any attempt by the engine to mutate its inputs throws (test files are strict ESM). */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

const order: OrderSagaData = deepFreeze({
  orderId,
  customerId: 'customer-7',
  items: [
    { sku: 'ABC-1', quantity: 2 },
    { sku: 'XYZ-9', quantity: 1 },
  ],
  paymentMethod: 'card',
  total: null,
  currency: null,
});
const reservation = deepFreeze({
  lines: [
    { sku: 'ABC-1', quantity: 2, unitPrice: 500 },
    { sku: 'XYZ-9', quantity: 1, unitPrice: 250 },
  ],
  total: 1250,
  currency: 'EUR',
});

// Each reply arrives at its own minute, so the timestamps show which transition set them.
const at = (minute: number) => new Date(Date.UTC(2025, 0, 1, 12, minute));
const iso = (minute: number) => at(minute).toISOString();

const ok = (command: CommandContract, payload: unknown = {}): Reply => ({ commandType: command.type, outcome: 'succeeded', payload });
const refused = (command: CommandContract, code: string, reason: string): Reply => ({ commandType: command.type, outcome: 'failed', payload: { code, reason } });

/**
 * Starts the saga (message m0, minute 0) and applies the replies in turn (reply i at minute i+1, the next
 * command carries message m{i+1}). Returns every transition, so tests can look at each step of the way.
 */
function run<D>(definition: SagaDefinition<D>, data: D, replies: Reply[]): Transition<D>[] {
  const transitions = [startSaga(definition, data, at(0), 'm0')];
  replies.forEach((reply, index) => {
    const current = transitions.at(-1)!;
    // The caller's contract: a reply only ever answers the command the saga awaits.
    expect(current.state.awaiting?.commandType).toBe(reply.commandType);
    transitions.push(applyReply(definition, deepFreeze(current.state), reply, at(index + 1), `m${index + 1}`));
  });
  return transitions;
}

/** What each transition sent, as `action command-type`, skipping the ones that sent nothing. */
const sent = (transitions: Transition<unknown>[]) => transitions.flatMap(({ send }) => (send ? [`${send.action} ${send.contract.type}`] : []));
const stepStatuses = (state: SagaState<unknown>) => Object.fromEntries(state.steps.map((step) => [step.name, step.status]));
const stepNamed = (state: SagaState<unknown>, name: string): StepState => state.steps.find((step) => step.name === name)!;

const happyReplies = [
  ok(OrderCommands.create, { status: 'PENDING' }),
  ok(InventoryCommands.reserve, reservation),
  ok(PaymentCommands.charge, { chargeId }),
  ok(OrderCommands.confirm, { status: 'CONFIRMED' }),
  ok(NotificationCommands.send, { notificationId }),
];

describe('order saga: happy path', () => {
  // Run in beforeAll: an engine error then fails this scenario's tests instead of the whole file.
  let transitions: Transition<OrderSagaData>[];
  let final: SagaState<OrderSagaData>;
  beforeAll(() => {
    transitions = run(orderSaga, order, happyReplies);
    final = transitions.at(-1)!.state;
  });

  test('starts RUNNING with every step (and the after-compensation step) PENDING except the first', () => {
    const { state, send } = transitions[0];
    expect(state.status).toBe('RUNNING');
    expect(state.failureReason).toBeNull();
    expect(stepStatuses(state)).toEqual({
      'create-order': 'RUNNING',
      'reserve-inventory': 'PENDING',
      'charge-payment': 'PENDING',
      'confirm-order': 'PENDING',
      notify: 'PENDING',
      'notify-cancellation': 'PENDING',
    });
    expect(send).toMatchObject({ step: 'create-order', action: 'invoke', contract: OrderCommands.create });
    expect(send!.payload).toEqual({ orderId, customerId: 'customer-7', items: order.items });
  });

  test('invokes the five steps in order, then sends nothing', () => {
    expect(sent(transitions)).toEqual([
      'invoke order.create',
      'invoke inventory.reserve',
      'invoke payment.charge',
      'invoke order.confirm',
      'invoke notification.send',
    ]);
    expect(transitions.at(-1)!.send).toBeNull();
  });

  test('ends COMPLETED, awaiting nothing, with notify-cancellation SKIPPED', () => {
    expect(final.status).toBe('COMPLETED');
    expect(FINAL_SAGA_STATUSES).toContain(final.status);
    expect(final.awaiting).toBeNull();
    expect(final.failureReason).toBeNull();
    expect(stepStatuses(final)).toEqual({
      'create-order': 'SUCCEEDED',
      'reserve-inventory': 'SUCCEEDED',
      'charge-payment': 'SUCCEEDED',
      'confirm-order': 'SUCCEEDED',
      notify: 'SUCCEEDED',
      'notify-cancellation': 'SKIPPED',
    });
  });

  test('folds the reservation total and currency into the data, and charges and confirms exactly that', () => {
    expect(final.data).toEqual({ ...order, total: 1250, currency: 'EUR' });
    // The payment step can only charge what inventory priced.
    expect(transitions[2].send!.payload).toEqual({ orderId, customerId: 'customer-7', amount: 1250, currency: 'EUR', paymentMethod: 'card' });
    expect(transitions[3].send!.payload).toEqual({ orderId, total: 1250, currency: 'EUR' });
    expect(transitions[4].send!.payload).toEqual({ orderId, customerId: 'customer-7', kind: 'confirmation' });
  });

  test('every command sent is valid for its contract', () => {
    for (const { send } of transitions) if (send) expect(send.contract.payload.safeParse(send.payload).error).toBeUndefined();
  });

  test('each command carries the message id it was given, and the state awaits exactly that message', () => {
    transitions.slice(0, -1).forEach(({ state, send }, index) => {
      expect(send!.messageId).toBe(`m${index}`);
      expect(state.awaiting).toMatchObject({ step: send!.step, action: 'invoke', commandType: send!.contract.type, messageId: `m${index}` });
    });
  });

  test('records one attempt per step, started when invoked and finished when its reply came', () => {
    orderSaga.steps.forEach((definition, index) => {
      expect(stepNamed(final, definition.name)).toEqual({
        name: definition.name,
        status: 'SUCCEEDED',
        attempts: 1,
        failures: [],
        startedAt: iso(index),
        finishedAt: iso(index + 1),
        compensatedAt: null,
        error: null,
      });
    });
    expect(stepNamed(final, 'notify-cancellation')).toMatchObject({ attempts: 0, startedAt: null, finishedAt: null });
  });

  test('a step still in flight has started but not finished', () => {
    expect(stepNamed(transitions[2].state, 'charge-payment')).toMatchObject({ status: 'RUNNING', attempts: 0, startedAt: iso(2), finishedAt: null });
  });
});

describe('order saga: reserve-inventory refused', () => {
  let transitions: Transition<OrderSagaData>[];
  let final: SagaState<OrderSagaData>;
  beforeAll(() => {
    transitions = run(orderSaga, order, [
      ok(OrderCommands.create, { status: 'PENDING' }),
      refused(InventoryCommands.reserve, 'OUT_OF_STOCK', 'only 1 of ABC-1 left'),
      ok(OrderCommands.cancel, { status: 'CANCELLED' }),
      ok(NotificationCommands.send, { notificationId }),
    ]);
    final = transitions.at(-1)!.state;
  });

  test('cancels the order (the only step done), then notifies the cancellation, then ends COMPENSATED', () => {
    expect(sent(transitions)).toEqual(['invoke order.create', 'invoke inventory.reserve', 'compensate order.cancel', 'invoke notification.send']);
    expect(final.status).toBe('COMPENSATED');
    expect(final.awaiting).toBeNull();
    expect(transitions.at(-1)!.send).toBeNull();
  });

  test('the cancel carries the failure code and reason, and so does the notification', () => {
    expect(transitions[2].send).toMatchObject({ step: 'create-order', action: 'compensate', contract: OrderCommands.cancel, messageId: 'm2' });
    expect(transitions[2].send!.payload).toEqual({ orderId, reason: 'OUT_OF_STOCK: only 1 of ABC-1 left' });
    expect(transitions[3].send).toMatchObject({ step: 'notify-cancellation', action: 'invoke', contract: NotificationCommands.send, messageId: 'm3' });
    expect(transitions[3].send!.payload).toEqual({ orderId, customerId: 'customer-7', kind: 'cancellation', reason: 'OUT_OF_STOCK: only 1 of ABC-1 left' });
    expect(final.failureReason).toBe('OUT_OF_STOCK: only 1 of ABC-1 left');
  });

  test('is COMPENSATING while undoing and awaits the compensation by its message id', () => {
    expect(transitions[2].state.status).toBe('COMPENSATING');
    expect(transitions[2].state.awaiting).toMatchObject({ step: 'create-order', action: 'compensate', commandType: 'order.cancel', messageId: 'm2' });
    expect(stepNamed(transitions[2].state, 'create-order').status).toBe('COMPENSATING');
    // Still COMPENSATING while the customer is being told.
    expect(transitions[3].state.status).toBe('COMPENSATING');
    expect(transitions[3].state.awaiting).toMatchObject({ step: 'notify-cancellation', action: 'invoke', commandType: 'notification.send', messageId: 'm3' });
  });

  test('records the refusal on the failed step, the undo on create-order, and skips what never ran', () => {
    expect(stepStatuses(final)).toEqual({
      'create-order': 'COMPENSATED',
      'reserve-inventory': 'FAILED',
      'charge-payment': 'SKIPPED',
      'confirm-order': 'SKIPPED',
      notify: 'SKIPPED',
      'notify-cancellation': 'SUCCEEDED',
    });
    expect(stepNamed(final, 'reserve-inventory')).toMatchObject({ finishedAt: iso(2), error: 'OUT_OF_STOCK: only 1 of ABC-1 left', compensatedAt: null });
    // The failed step did nothing, so there is nothing of it to undo: it is never compensated.
    expect(sent(transitions)).not.toContain('compensate inventory.release');
    expect(stepNamed(final, 'create-order')).toMatchObject({ finishedAt: iso(1), compensatedAt: iso(3), error: null });
    expect(stepNamed(final, 'notify-cancellation')).toMatchObject({ attempts: 1, startedAt: iso(3), finishedAt: iso(4) });
  });

  test('no data was folded: the reservation never succeeded', () => {
    expect(final.data).toEqual(order);
  });
});

/** The card is declined: the reservation is released, the order cancelled, the customer told. */
const declinedReplies = [
  ok(OrderCommands.create, { status: 'PENDING' }),
  ok(InventoryCommands.reserve, reservation),
  refused(PaymentCommands.charge, 'CARD_DECLINED', 'insufficient funds'),
  ok(InventoryCommands.release, { released: 3 }),
  ok(OrderCommands.cancel, { status: 'CANCELLED' }),
  ok(NotificationCommands.send, { notificationId }),
];

describe('order saga: charge-payment refused', () => {
  let transitions: Transition<OrderSagaData>[];
  let final: SagaState<OrderSagaData>;
  beforeAll(() => {
    transitions = run(orderSaga, order, declinedReplies);
    final = transitions.at(-1)!.state;
  });

  test('releases the stock, then cancels the order — the reverse of the order they were done in', () => {
    expect(sent(transitions)).toEqual([
      'invoke order.create',
      'invoke inventory.reserve',
      'invoke payment.charge',
      'compensate inventory.release',
      'compensate order.cancel',
      'invoke notification.send',
    ]);
    expect(transitions[3].send!.payload).toEqual({ orderId });
    expect(transitions[4].send!.payload).toEqual({ orderId, reason: 'CARD_DECLINED: insufficient funds' });
  });

  test('does not refund a charge that was refused', () => {
    expect(sent(transitions)).not.toContain('compensate payment.refund');
  });

  test('ends COMPENSATED with both undone steps stamped', () => {
    expect(final.status).toBe('COMPENSATED');
    expect(stepStatuses(final)).toMatchObject({
      'create-order': 'COMPENSATED',
      'reserve-inventory': 'COMPENSATED',
      'charge-payment': 'FAILED',
      'confirm-order': 'SKIPPED',
      notify: 'SKIPPED',
      'notify-cancellation': 'SUCCEEDED',
    });
    expect(stepNamed(final, 'reserve-inventory').compensatedAt).toBe(iso(4));
    expect(stepNamed(final, 'create-order').compensatedAt).toBe(iso(5));
  });

  test('each compensation carries its own message id and is the one awaited', () => {
    expect(transitions[3].send!.messageId).toBe('m3');
    expect(transitions[3].state.awaiting).toMatchObject({ step: 'reserve-inventory', action: 'compensate', commandType: 'inventory.release', messageId: 'm3' });
    expect(transitions[4].send!.messageId).toBe('m4');
    expect(transitions[4].state.awaiting).toMatchObject({ step: 'create-order', action: 'compensate', commandType: 'order.cancel', messageId: 'm4' });
  });

  test('every command sent is valid for its contract', () => {
    for (const { send } of transitions) if (send) expect(send.contract.payload.safeParse(send.payload).error).toBeUndefined();
  });
});

/** The order saga with refusals not retried: the first refusal after the pivot or of an undo is final. */
const noRetries = { ...orderSaga, policy: { ...orderSaga.policy, retryAfterPivot: { ...orderSaga.policy.retryAfterPivot, attempts: 1 }, compensationRetry: { ...orderSaga.policy.compensationRetry, attempts: 1 } } };

describe('order saga: a step after the pivot refused', () => {
  let transitions: Transition<OrderSagaData>[];
  let last: Transition<OrderSagaData>;
  beforeAll(() => {
    transitions = run(noRetries, order, [
      ok(OrderCommands.create, { status: 'PENDING' }),
      ok(InventoryCommands.reserve, reservation),
      ok(PaymentCommands.charge, { chargeId }),
      refused(OrderCommands.confirm, 'ORDER_GONE', 'order was deleted'),
    ]);
    last = transitions.at(-1)!;
  });

  test('ends FAILED at once and sends nothing: a paid order is never undone', () => {
    expect(last.send).toBeNull();
    expect(last.state.status).toBe('FAILED');
    expect(last.state.awaiting).toBeNull();
    expect(sent(transitions).filter((command) => command.startsWith('compensate'))).toEqual([]);
  });

  test('keeps the done steps SUCCEEDED, records the refusal, and skips the rest', () => {
    expect(stepStatuses(last.state)).toEqual({
      'create-order': 'SUCCEEDED',
      'reserve-inventory': 'SUCCEEDED',
      'charge-payment': 'SUCCEEDED',
      'confirm-order': 'FAILED',
      notify: 'SKIPPED',
      'notify-cancellation': 'SKIPPED',
    });
    expect(stepNamed(last.state, 'confirm-order')).toMatchObject({ error: 'ORDER_GONE: order was deleted', finishedAt: iso(4) });
    expect(last.state.failureReason).toBe('ORDER_GONE: order was deleted');
  });

  test('the last step (notify) refused ends FAILED the same way', () => {
    const notifyRefused = run(noRetries, order, [...happyReplies.slice(0, 4), refused(NotificationCommands.send, 'SMTP_DOWN', 'mail server rejected')]).at(-1)!;
    expect(notifyRefused.send).toBeNull();
    expect(notifyRefused.state.status).toBe('FAILED');
    expect(stepNamed(notifyRefused.state, 'notify').status).toBe('FAILED');
  });
});

describe('order saga: a compensation refused', () => {
  let transitions: Transition<OrderSagaData>[];
  let last: Transition<OrderSagaData>;
  beforeAll(() => {
    transitions = run(noRetries, order, [
      ok(OrderCommands.create, { status: 'PENDING' }),
      ok(InventoryCommands.reserve, reservation),
      refused(PaymentCommands.charge, 'CARD_DECLINED', 'insufficient funds'),
      refused(InventoryCommands.release, 'RELEASE_FAILED', 'reservation locked'),
    ]);
    last = transitions.at(-1)!;
  });

  test('ends COMPENSATION_FAILED and stops undoing: order.cancel is never sent', () => {
    expect(last.state.status).toBe('COMPENSATION_FAILED');
    expect(last.send).toBeNull();
    expect(last.state.awaiting).toBeNull();
    expect(sent(transitions)).not.toContain('compensate order.cancel');
    expect(sent(transitions)).not.toContain('invoke notification.send');
  });

  test('marks the refused undo, keeps the original failure reason, and leaves create-order un-undone', () => {
    expect(stepNamed(last.state, 'reserve-inventory')).toMatchObject({ status: 'COMPENSATION_FAILED', error: 'RELEASE_FAILED: reservation locked', compensatedAt: null });
    expect(stepNamed(last.state, 'create-order').status).toBe('SUCCEEDED');
    expect(stepNamed(last.state, 'notify-cancellation').status).toBe('SKIPPED');
    expect(last.state.failureReason).toBe('CARD_DECLINED: insufficient funds');
  });
});

describe('the state as stored', () => {
  // Through JSON, as the column stores it: every state of a compensated run (failures, errors, timestamps).
  const stored = (state: SagaState<OrderSagaData>) => JSON.parse(JSON.stringify(packState(state)));
  const declined = () => run(orderSaga, order, declinedReplies);

  test('reads back as it was, at every transition', () => {
    for (const { state } of [...run(orderSaga, order, happyReplies), ...declined()]) expect(unpackState(stored(state))).toEqual(state);
  });

  test('leaves out the fields of a step still at their defaults, and keeps the rest', () => {
    const [{ state }] = run(orderSaga, order, []);
    const steps = stored(state).steps;
    expect(steps[0]).toEqual({ name: 'create-order', status: 'RUNNING', startedAt: iso(0) });
    expect(steps[1]).toEqual({ name: 'reserve-inventory', status: 'PENDING' });
    expect(JSON.stringify(packState(state)).length).toBeLessThan(JSON.stringify(state).length * 0.6);
  });

  test('a state stored whole (before packing) reads back the same', () => {
    const { state } = declined().at(-1)!;
    expect(unpackState(JSON.parse(JSON.stringify(state)))).toEqual(state);
  });
});

describe('applyReply does not mutate its input', () => {
  test('the state passed in is unchanged, and the returned state shares no step or awaited command with it', () => {
    const started = startSaga(orderSaga, structuredClone(order), at(0), 'm0').state;
    const afterCreate = applyReply(orderSaga, started, ok(OrderCommands.create, { status: 'PENDING' }), at(1), 'm1').state;
    const before = structuredClone(afterCreate);

    const afterReserve = applyReply(orderSaga, afterCreate, ok(InventoryCommands.reserve, reservation), at(2), 'm2').state;

    // The orchestrator may still hold (or retry with) the old state: it must read as it did.
    expect(afterCreate).toEqual(before);
    expect(afterCreate.awaiting!.messageId).toBe('m1');
    expect(afterCreate.data.total).toBeNull();
    expect(afterReserve).not.toBe(afterCreate);
    expect(afterReserve.steps).not.toBe(afterCreate.steps);
    expect(afterReserve.steps[0]).not.toBe(afterCreate.steps[0]);
    expect(afterReserve.steps[0].failures).not.toBe(afterCreate.steps[0].failures);
    expect(afterReserve.awaiting).not.toBe(afterCreate.awaiting);
    // The data is shared until a step's onSuccess folds a result into new data.
    expect(afterReserve.data.total).toBe(1250);
  });

  test('a failed reply and a compensation reply leave their input unchanged too', () => {
    const afterCreate = run(orderSaga, order, [ok(OrderCommands.create)]).at(-1)!.state;
    const snapshot = structuredClone(afterCreate);
    const compensating = applyReply(orderSaga, afterCreate, refused(InventoryCommands.reserve, 'OUT_OF_STOCK', 'none'), at(2), 'm2').state;
    expect(afterCreate).toEqual(snapshot);

    const compensatingSnapshot = structuredClone(compensating);
    applyReply(orderSaga, compensating, ok(OrderCommands.cancel), at(3), 'm3');
    expect(compensating).toEqual(compensatingSnapshot);
  });
});

describe('a tiny made-up saga', () => {
  // Two steps before the pivot, one after, no after-compensation step.
  type Tiny = { orderId: string; reserved: number };
  const tiny = defineSaga<Tiny>('tiny', { retryAfterPivot: { ...orderSaga.policy.retryAfterPivot, attempts: 1 } })
    .step('reserve')
    .invoke(InventoryCommands.reserve, (data) => ({ orderId: data.orderId, items: [{ sku: 'ABC-1', quantity: 1 }] }))
    .onSuccess((data, result) => ({ ...data, reserved: result.total }))
    .compensateWith(InventoryCommands.release, (data) => ({ orderId: data.orderId }))
    .step('charge')
    .invoke(PaymentCommands.charge, (data) => ({ orderId: data.orderId, customerId: 'c', amount: data.reserved, currency: 'EUR', paymentMethod: 'card' }))
    .pivot()
    .step('notify')
    .invoke(NotificationCommands.send, (data) => ({ orderId: data.orderId, customerId: 'c', kind: 'confirmation' as const }))
    .build();
  const data: Tiny = { orderId, reserved: 0 };

  test('has no after-compensation step in its state', () => {
    expect(startSaga(tiny, data, at(0), 'first').state.steps.map((step) => step.name)).toEqual(['reserve', 'charge', 'notify']);
  });

  test('the first command carries the message id given to startSaga', () => {
    const { state, send } = startSaga(tiny, data, at(0), 'first');
    expect(send!.messageId).toBe('first');
    expect(state.awaiting).toMatchObject({ step: 'reserve', action: 'invoke', commandType: 'inventory.reserve', messageId: 'first' });
  });

  test('completes, using the folded result in the next command', () => {
    const transitions = run(tiny, data, [ok(InventoryCommands.reserve, { lines: [], total: 700, currency: 'EUR' }), ok(PaymentCommands.charge, { chargeId }), ok(NotificationCommands.send, { notificationId })]);
    expect(transitions[1].send!.payload).toMatchObject({ amount: 700 });
    expect(transitions.at(-1)!.state).toMatchObject({ status: 'COMPLETED', data: { orderId, reserved: 700 } });
    expect(stepStatuses(transitions.at(-1)!.state)).toEqual({ reserve: 'SUCCEEDED', charge: 'SUCCEEDED', notify: 'SUCCEEDED' });
  });

  test('a refused first step has nothing to undo and ends COMPENSATED at once', () => {
    const last = run(tiny, data, [refused(InventoryCommands.reserve, 'OUT_OF_STOCK', 'none')]).at(-1)!;
    expect(last.send).toBeNull();
    expect(last.state).toMatchObject({ status: 'COMPENSATED', awaiting: null, failureReason: 'OUT_OF_STOCK: none' });
    expect(stepStatuses(last.state)).toEqual({ reserve: 'FAILED', charge: 'SKIPPED', notify: 'SKIPPED' });
  });

  test('a refused step without a compensation undoes the earlier step, then ends COMPENSATED without an after-step', () => {
    const transitions = run(tiny, data, [
      ok(InventoryCommands.reserve, { lines: [], total: 700, currency: 'EUR' }),
      refused(PaymentCommands.charge, 'CARD_DECLINED', 'expired'),
      ok(InventoryCommands.release, { released: 1 }),
    ]);
    expect(sent(transitions)).toEqual(['invoke inventory.reserve', 'invoke payment.charge', 'compensate inventory.release']);
    const last = transitions.at(-1)!;
    expect(last.send).toBeNull();
    expect(last.state.status).toBe('COMPENSATED');
    expect(stepStatuses(last.state)).toEqual({ reserve: 'COMPENSATED', charge: 'FAILED', notify: 'SKIPPED' });
  });

  test('a refusal after its pivot ends FAILED with nothing undone', () => {
    const transitions = run(tiny, data, [
      ok(InventoryCommands.reserve, { lines: [], total: 700, currency: 'EUR' }),
      ok(PaymentCommands.charge, { chargeId }),
      refused(NotificationCommands.send, 'SMTP_DOWN', 'no mail'),
    ]);
    expect(transitions.at(-1)!.send).toBeNull();
    expect(transitions.at(-1)!.state.status).toBe('FAILED');
    expect(stepStatuses(transitions.at(-1)!.state)).toEqual({ reserve: 'SUCCEEDED', charge: 'SUCCEEDED', notify: 'FAILED' });
  });
});
