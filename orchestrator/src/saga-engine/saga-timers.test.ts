// Timers and refusals in the pure state machine: a command the broker holds has no timer of its own (never
// sent again because its reply is late); the deadline is the one timer that fails a step; refusals after
// the pivot and of undos are retried with back-off instead of ending the saga.
import { InventoryCommands, OrderCommands, PaymentCommands } from '../../../shared/src/contracts/index.js';
import { orderSaga } from '../order-saga/order-saga.definition.js';
import type { OrderSagaData } from '../order-saga/order-saga.data.js';
import { applyReply, applyTimer, nextTimerAt, REPLY_GRACE_MS, resendAwaited, retryNow, setAside, startSaga, type SagaState } from './saga-state.js';

const saga = { ...orderSaga, policy: { ...orderSaga.policy, workTimeoutMs: 1_000, deadlineMs: 60_000 } };
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

describe('a command the broker holds', () => {
  test('has no timer of its own: before the deadline a due timer does nothing, however late the reply', () => {
    const state = awaitingCharge();
    expect(state.awaiting).toMatchObject({ messageId: 'm2', sends: 1, sentAt: t(2_000).toISOString() });
    expect(nextTimerAt(saga, state)).toEqual(new Date(Date.parse(state.deadlineAt!) + REPLY_GRACE_MS));
    expect(applyTimer(saga, state, t(59_999), 'x')).toBeNull();
  });

  test('carries the step\'s work timeout, and the deadline as its expiry while the step is before the pivot', () => {
    const { send } = startSaga(saga, data, t(0), 'm0');
    expect(send).toMatchObject({ workTimeoutMs: 1_000, expiresAt: t(60_000).toISOString() });
    const paid = applyReply(saga, awaitingCharge(), ok(PaymentCommands.charge.type, { chargeId: '0190a7f2-0000-7000-8000-0000000000c1' }), t(3_000), 'm3');
    expect(paid.send).toMatchObject({ contract: OrderCommands.confirm, expiresAt: null });
  });

  test('sent again only by a person (or when no publish was confirmed): same message id, one more send', () => {
    const { state, send } = resendAwaited(saga, awaitingCharge(), t(5_000));
    expect(send).toMatchObject({ messageId: 'm2', resend: 1, contract: PaymentCommands.charge });
    expect(state.awaiting).toMatchObject({ messageId: 'm2', sends: 2, sentAt: t(5_000).toISOString() });
  });
});

describe('saga deadline', () => {
  test('a saga still before its pivot at its deadline fails the awaited step and compensates; the reason names the step and its wait', () => {
    const late = { ...saga, policy: { ...saga.policy, deadlineMs: 2_500 } };
    let state = startSaga(late, data, t(0), 'm0').state;
    state = applyReply(late, state, ok(OrderCommands.create.type, { status: 'PENDING' }), t(1_000), 'm1').state;
    expect(nextTimerAt(late, state)).toEqual(t(2_500 + REPLY_GRACE_MS));
    // Its command expired at the deadline; a reply to work begun before it still lands during the grace.
    expect(applyTimer(late, state, t(2_500 + REPLY_GRACE_MS - 1), 'm2')).toBeNull();
    const { state: after, send, timer } = applyTimer(late, state, t(2_500 + REPLY_GRACE_MS), 'm2')!;
    expect(timer?.kind).toBe('deadline-exceeded');
    expect(after.failureReason).toBe("DEADLINE_EXCEEDED: reserve-inventory's inventory.reserve went unanswered for 6.5 s (waiting in its queue, in a participant's hands or in its .dlq); the saga must reach its pivot within 2500 ms");
    // The step cut short by the deadline (reserve-inventory) may have acted: it is undone first.
    expect(send).toMatchObject({ action: 'compensate', contract: InventoryCommands.release });
  });

  test('past the pivot the deadline no longer applies', () => {
    const late = { ...saga, policy: { ...saga.policy, deadlineMs: 2_500 } };
    const paid = applyReply(late, awaitingCharge(), ok(PaymentCommands.charge.type, { chargeId: '0190a7f2-0000-7000-8000-0000000000c1' }), t(2_100), 'm3').state;
    expect(nextTimerAt(late, paid)).toBeNull(); // nothing but confirm-order's reply, which the broker holds
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

  test('is set aside with the reason: only the deadline stays', () => {
    const { state, send, timer } = setAside(awaitingCharge(), t(2_500), reason);
    expect(send).toBeNull();
    expect(timer).toMatchObject({ kind: 'command-set-aside', step: 'charge-payment', detail: expect.stringContaining(reason) });
    expect(state.awaiting).toMatchObject({ messageId: 'm2', setAside: { at: t(2_500).toISOString(), reason } });
    expect(applyTimer(saga, state, t(10_000), 'x')).toBeNull();
    // Past the pivot the deadline does not apply: nothing is left for a timer.
    expect(nextTimerAt(saga, { ...state, awaiting: { ...state.awaiting!, step: 'confirm-order' } })).toBeNull();
    expect(nextTimerAt(saga, state)).toEqual(new Date(Date.parse(state.deadlineAt!) + REPLY_GRACE_MS));
  });

  test('the console’s retry sends it again (same message id), no longer set aside', () => {
    const { state } = setAside(awaitingCharge(), t(2_500), reason);
    const retried = retryNow(saga, state, t(3_000), 'unused');
    expect(retried.send).toMatchObject({ messageId: 'm2', contract: PaymentCommands.charge });
    expect(retried.state.awaiting?.setAside).toBeUndefined();
  });
});
