// Transient failures heal by themselves, through the broker's delay queues; permanent ones end the step at
// once; what cannot be handled lands in the queue's .dlq with the story of its attempts.
import amqplib from 'amqplib';
import { HEADERS } from '../../shared/src/contracts/envelope.js';
import { eventually } from '../../shared/src/testkit/index.js';
import { amqpUrl, api, newCustomer } from './context.js';

const tee = [{ sku: 'SKU-TEE', quantity: 1 }];
const stepNamed = (order: Awaited<ReturnType<typeof api.awaitFinal>>, name: string) => order.saga.steps.find((step) => step.name === name)!;
const ms = (iso: string | null) => Date.parse(iso!);

describe('retries', () => {
  test('a participant that fails transiently twice, then succeeds: the saga completes after 3 attempts, the delays growing', async () => {
    const orderId = await api.submit({ customerId: newCustomer(), items: tee, paymentMethod: 'tok_visa', faults: { 'payment.charge': { error: 2 } } });
    const order = await api.awaitFinal(orderId);
    expect(order.status).toBe('CONFIRMED');

    const charge = stepNamed(order, 'charge-payment');
    expect(charge.attempts).toBe(3);
    expect(charge.failures).toHaveLength(2);
    expect(charge.failures.every((failure) => /injected transient error/.test(failure.error))).toBe(true);
    // The order saga's policy: 250 ms, then 1 s (each ±10%) between attempts.
    const firstDelay = ms(charge.failures[1].at) - ms(charge.failures[0].at);
    const secondDelay = ms(charge.finishedAt) - ms(charge.failures[1].at);
    expect(firstDelay).toBeGreaterThanOrEqual(225);
    expect(firstDelay).toBeLessThan(900);
    expect(secondDelay).toBeGreaterThanOrEqual(900);
    expect(secondDelay).toBeGreaterThan(firstDelay);

    expect(await api.payments(orderId)).toEqual([expect.objectContaining({ type: 'charge', amount: order.total })]);
  });

  test('a step after the pivot that fails (notify) is retried; the order stays CONFIRMED and nothing is undone', async () => {
    const orderId = await api.submit({ customerId: newCustomer(), items: tee, paymentMethod: 'tok_visa', faults: { 'notification.send': { error: 2 } } });
    const order = await api.awaitFinal(orderId);
    expect(order.status).toBe('CONFIRMED');
    expect(stepNamed(order, 'notify')).toMatchObject({ status: 'SUCCEEDED', attempts: 3 });
    expect(order.saga.steps.filter((step) => step.status === 'COMPENSATED')).toEqual([]);
    expect(await api.notifications(orderId)).toEqual([expect.objectContaining({ kind: 'confirmation' })]);
  });

  test('a permanent failure fails the step at once (one attempt) and the saga compensates', async () => {
    const before = await api.stock('SKU-TEE');
    const orderId = await api.submit({ customerId: newCustomer(), items: tee, paymentMethod: 'tok_visa', faults: { 'payment.charge': { fail: 'gateway says no' } } });
    const order = await api.awaitFinal(orderId);
    expect(order.status).toBe('CANCELLED');
    expect(order.failureReason).toBe('INJECTED_FAILURE: gateway says no');
    expect(stepNamed(order, 'charge-payment')).toMatchObject({ status: 'FAILED', attempts: 1, failures: [] });
    expect(await api.stock('SKU-TEE')).toEqual(before);
  });

  test('after the last attempt the command goes to its .dlq with the original queue, reason, error, attempts, saga id and failure times', async () => {
    const orderId = await api.submit({ customerId: newCustomer(), items: tee, paymentMethod: 'tok_visa', faults: { 'inventory.reserve': { error: 10 } } });
    const { saga } = (await api.order(orderId))!;
    const connection = await amqplib.connect(amqpUrl);
    try {
      const channel = await connection.createChannel();
      // 3 attempts: 250 ms + 1 s of delays.
      const dead = await eventually(
        async () => {
          const message = await channel.get('inventory.commands.dlq', { noAck: false });
          if (!message) return undefined;
          // Another suite's letter stays unacked (held) so the next get reaches further; closing gives it back.
          // A requeued one would return to the head, and the get would see it again and again.
          if (message.properties.headers?.[HEADERS.sagaId] !== saga.id) return undefined;
          channel.ack(message);
          return message;
        },
        { timeoutMs: 30_000, what: 'the reserve command in inventory.commands.dlq' },
      );
      const headers = dead.properties.headers!;
      expect(headers).toMatchObject({
        [HEADERS.originalQueue]: 'inventory.commands',
        [HEADERS.deadLetterReason]: 'retries-exhausted',
        [HEADERS.attempts]: 3,
        [HEADERS.sagaId]: saga.id,
      });
      expect(headers[HEADERS.deadLetterError]).toMatch(/injected transient error on attempt 3/);
      const failures = JSON.parse(headers[HEADERS.failures]);
      expect(failures).toHaveLength(3);
      expect(headers[HEADERS.firstFailureAt]).toBe(failures[0].at);
      expect(headers[HEADERS.lastFailureAt]).toBe(failures[2].at);
      expect(ms(failures[2].at) - ms(failures[0].at)).toBeGreaterThanOrEqual(225 + 900);
    } finally {
      await connection.close();
    }
    // The saga still waits for the reserve (a person may replay it); nothing sends it again, and its deadline
    // decides: the step fails and the saga compensates.
    expect((await api.order(orderId))!.saga.status).toBe('RUNNING');
    const order = await api.awaitFinal(orderId);
    expect(order.status).toBe('CANCELLED');
    expect(order.failureReason).toMatch(/^DEADLINE_EXCEEDED: reserve-inventory's inventory.reserve went unanswered for [\d.]+ s/);
    expect(order.saga.history.filter((event) => event.kind === 'command-sent' && event.messageType === 'inventory.reserve')).toHaveLength(1);
  }, 60_000);
});
