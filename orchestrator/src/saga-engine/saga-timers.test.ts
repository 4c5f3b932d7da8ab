// Timers and refusals in the pure state machine: what a due timer does (send again with the same id, then
// fail and compensate), the deadline, and refusals that are retried with back-off instead of ending the saga.
import { InventoryCommands, OrderCommands, PaymentCommands } from '../../../shared/src/contracts/index.js';
import { orderSaga } from '../order-saga/order-saga.definition.js';
import type { OrderSagaData } from '../order-saga/order-saga.data.js';
import { applyReply, applyTimer, nextTimerAt, retryNow, setAside, startSaga, type SagaState } from './saga-state.js';

const saga = { ...orderSaga, policy: { ...orderSaga.policy, stepTimeoutMs: 1_000, resendsOnTimeout: 1, deadlineMs: 60_000 } };
const data: OrderSagaData = { orderId: '0190a7f2-0000-7000-8000-000000000001', customerId: 'c', items: [{ sku: 'A-1', quantity: 1 }], paymentMethod: 'tok', total: 500, currency: 'EUR' };
const t = (ms: number) => new Date(Date.UTC(2025, 0, 1) + ms);
const ok = (type: string, payload: unknown = {}) => ({ commandType: type, outcome: 'succeeded' as const, payload });
const no = (type: string) => ({ commandType: type, outcome: 'failed' as const, payload: { code: 'NO', reason: 'refused' } });

/** The saga after create-order and reserve-inventory succeeded, awaiting the charge (sent at 2 s). */
function awaitingCharge(): SagaState<OrderSagaData> {
  let state = startSaga(saga, data, t(0), 'm0').state;
  state = applyReply(saga, state, ok(OrderCommands.create.type, { status: 'PENDING' }), t(1_000), 'm1').state;
  return applyReply(saga, state, ok(InventoryCommands.reserve.type, { lines: [], total: 500, currency: 'EUR' }), t(2_000), 'm2').state;
}

describe('step timeouts', () => {
  test('before the timeout nothing happens; the next timer is the awaited reply’s timeout', () => {
    const state = awaitingCharge();
    expect(nextTimerAt(saga, state)).toEqual(t(3_000));
    expect(applyTimer(saga, state, t(2_999), 'x')).toBeNull();
  });

  test('at the timeout the same command (same message id) is sent again, marked as a resend', () => {
    const { state, send, timer } = applyTimer(saga, awaitingCharge(), t(3_000), 'fresh')!;
    expect(send).toMatchObject({ messageId: 'm2', resend: 1, contract: PaymentCommands.charge, payload: expect.objectContaining({ amount: 500 }) });
    expect(state.awaiting).toMatchObject({ messageId: 'm2', sends: 2, timeoutAt: t(4_000).toISOString() });
    expect(timer?.kind).toBe('timed-out');
  });

  test('after the last resend the step fails with TIMEOUT and its predecessors are compensated', () => {
    const resent = applyTimer(saga, awaitingCharge(), t(3_000), 'unused')!.state;
    const { state, send } = applyTimer(saga, resent, t(4_000), 'm3')!;
    expect(state.status).toBe('COMPENSATING');
    expect(state.failureReason).toBe('TIMEOUT: no reply to payment.charge after 2 sends');
    expect(state.steps.find((step) => step.name === 'charge-payment')).toMatchObject({ status: 'COMPENSATING', mayHaveActed: true });
    // The charge may have gone through without a reply: it is refunded first (a refund of nothing is a no-op).
    expect(send).toMatchObject({ messageId: 'm3', action: 'compensate', contract: PaymentCommands.refund, resend: 0 });
  });
});

describe('saga deadline', () => {
  test('a saga still before its pivot at its deadline fails the awaited step and compensates', () => {
    const late = { ...saga, policy: { ...saga.policy, stepTimeoutMs: 600_000, deadlineMs: 2_500 } };
    let state = startSaga(late, data, t(0), 'm0').state;
    state = applyReply(late, state, ok(OrderCommands.create.type, { status: 'PENDING' }), t(1_000), 'm1').state;
    expect(nextTimerAt(late, state)).toEqual(t(2_500));
    const { state: after, send, timer } = applyTimer(late, state, t(2_500), 'm2')!;
    expect(timer?.kind).toBe('deadline-exceeded');
    expect(after.failureReason).toMatch(/^DEADLINE_EXCEEDED/);
    // The step cut short by the deadline (reserve-inventory) may have acted: it is undone first.
    expect(send).toMatchObject({ action: 'compensate', contract: InventoryCommands.release });
  });

  test('past the pivot the deadline no longer applies', () => {
    const late = { ...saga, policy: { ...saga.policy, deadlineMs: 2_500 } };
    const paid = applyReply(late, awaitingCharge(), ok(PaymentCommands.charge.type, { chargeId: '0190a7f2-0000-7000-8000-0000000000c1' }), t(2_100), 'm3').state;
    expect(nextTimerAt(late, paid)).toEqual(t(3_100)); // only confirm-order's reply timeout
  });
});

describe('refusals that are retried', () => {
  test('a step after the pivot that refuses is sent again later, with a new message id, and never compensated', () => {
    const paid = applyReply(saga, awaitingCharge(), ok(PaymentCommands.charge.type, { chargeId: '0190a7f2-0000-7000-8000-0000000000c1' }), t(3_000), 'm3').state;
    const { state, send } = applyReply(saga, paid, no(OrderCommands.confirm.type), t(4_000), 'm4');
    expect(state.status).toBe('RUNNING');
    expect(send).toMatchObject({ messageId: 'm4', action: 'invoke', contract: OrderCommands.confirm });
    expect(send!.delayMs).toBeGreaterThan(0);
    expect(state.awaiting).toMatchObject({ messageId: 'm4', refusals: 1 });
  });

  test('an undo that refuses is sent again later; past the policy’s attempts the saga is COMPENSATION_FAILED', () => {
    const strict = { ...saga, policy: { ...saga.policy, compensationRetry: { ...saga.policy.compensationRetry, attempts: 2 } } };
    let state = startSaga(strict, data, t(0), 'm0').state;
    state = applyReply(strict, state, ok(OrderCommands.create.type, { status: 'PENDING' }), t(1), 'm1').state;
    state = applyReply(strict, state, no(InventoryCommands.reserve.type), t(2), 'm2').state; // cancel-order sent
    const again = applyReply(strict, state, no(OrderCommands.cancel.type), t(3), 'm3');
    expect(again.send).toMatchObject({ messageId: 'm3', action: 'compensate', contract: OrderCommands.cancel });
    expect(again.send!.delayMs).toBeGreaterThan(0);
    const final = applyReply(strict, again.state, no(OrderCommands.cancel.type), t(4), 'm4');
    expect(final.state.status).toBe('COMPENSATION_FAILED');
    expect(final.send).toBeNull();
  });
});

describe('a command that can never be published', () => {
  const reason = 'correlation id must be 1 to 128 printable ASCII characters (it has 300)';

  test('is set aside with the reason: no more resends, only the deadline stays', () => {
    const { state, send, timer } = setAside(awaitingCharge(), t(2_500), reason);
    expect(send).toBeNull();
    expect(timer).toMatchObject({ kind: 'command-set-aside', step: 'charge-payment', detail: expect.stringContaining(reason) });
    expect(state.awaiting).toMatchObject({ messageId: 'm2', setAside: { at: t(2_500).toISOString(), reason } });
    expect(applyTimer(saga, state, t(10_000), 'x')).toBeNull();
    // Past the pivot the deadline does not apply: nothing is left for a timer.
    expect(nextTimerAt(saga, { ...state, awaiting: { ...state.awaiting!, step: 'confirm-order' } })).toBeNull();
    expect(nextTimerAt(saga, state)).toEqual(new Date(state.deadlineAt!));
  });

  test('the console’s retry sends it again (same message id), no longer set aside', () => {
    const { state } = setAside(awaitingCharge(), t(2_500), reason);
    const retried = retryNow(saga, state, t(3_000), 'unused');
    expect(retried.send).toMatchObject({ messageId: 'm2', contract: PaymentCommands.charge });
    expect(retried.state.awaiting?.setAside).toBeUndefined();
  });
});
