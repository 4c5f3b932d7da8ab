// The failed-saga console: what cannot be handled lands where a person can see it (the console and the
// management UI's .dlq queues), understand it (saga, step, reason, attempts) and act on it (replay, discard,
// retry, compensate) — every action recorded in the saga's history.
import { randomUUID } from 'node:crypto';
import { BrokerAdmin, eventually } from '../../shared/src/testkit/index.js';
import { api, newCustomer, openSuiteChannel, vhost } from './context.js';

const broker = openSuiteChannel();

type DeadLetterRow = { messageId: string; sagaId: string; orderId: string; step: string; reason: string; attempts: number; queue: string; type: string };

const post = async (path: string, body: unknown) => {
  const response = await api.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as any };
};
const deadLettersOf = async (orderId: string) => (await api.deadLetters<DeadLetterRow>()).filter((row) => row.orderId === orderId);
const tee = [{ sku: 'SKU-TEE', quantity: 1 }];

describe('failed-saga console', () => {
  test('an exhausted command is listed with its saga and step, shows in the .dlq, is replayed once, and the saga completes', async () => {
    const before = await api.stock('SKU-TEE');
    // Three attempts fail (the policy's all), so the reserve is dead-lettered; the fourth, after the replay, succeeds.
    const orderId = await api.submit({ customerId: newCustomer(), items: tee, paymentMethod: 'tok_visa', faults: { 'inventory.reserve': { error: 3 } } });
    const [letter] = await eventually(async () => ((await deadLettersOf(orderId)).length ? deadLettersOf(orderId) : undefined), { what: 'the dead letter in the console' });
    expect(letter).toMatchObject({ queue: 'inventory.commands.dlq', type: 'inventory.reserve', step: 'reserve-inventory', reason: 'retries-exhausted', attempts: 3 });

    const replay = await post('/console/dead-letters/replay', { messageIds: [letter.messageId], reason: 'stock system back' });
    expect(replay.status).toBe(201);
    expect(replay.body.replayed.map((row: DeadLetterRow) => row.messageId)).toEqual([letter.messageId]);
    // A second replay of the same dead letter finds nothing to send.
    const again = await post('/console/dead-letters/replay', { messageIds: [letter.messageId] });
    expect(again.body).toEqual({ replayed: [], notFound: [letter.messageId] });

    const order = await api.awaitFinal(orderId);
    expect(order.status).toBe('CONFIRMED');
    expect(order.saga.steps.find((step) => step.name === 'reserve-inventory')?.attempts).toBe(4);
    expect(order.saga.history.filter((event) => event.kind === 'operator-action').map((event) => [event.outcome, event.detail])).toEqual([
      ['replay', 'dead letter inventory.reserve replayed to inventory.commands: stock system back'],
    ]);
    // One effect: reserved once, charged once.
    expect(await api.stock('SKU-TEE')).toMatchObject({ available: before.available - 1, reserved: before.reserved + 1 });
    expect(await api.payments(orderId)).toHaveLength(1);
    expect(await deadLettersOf(orderId)).toEqual([]);
  });

  test('dead letters stay visible in the management UI until handled; a discard removes one and says why', async () => {
    const orderId = await api.submit({ customerId: newCustomer(), items: tee, paymentMethod: 'tok_visa', faults: { 'order.create': { error: 99 } } });
    const [letter] = await eventually(async () => ((await deadLettersOf(orderId)).length ? deadLettersOf(orderId) : undefined), { what: 'the dead letter' });
    const admin = new BrokerAdmin();
    await eventually(async () => ((await admin.queue(vhost, 'order.commands.dlq')).messages >= 1 ? true : undefined), {
      what: 'order.commands.dlq to show the message in the management API',
    });

    // By now the step's timeout may have sent the command again (same id), and that copy failed its way here too.
    const discard = await post('/console/dead-letters/discard', { messageIds: [letter.messageId], reason: 'customer withdrew' });
    const discarded: DeadLetterRow[] = discard.body.discarded;
    expect(discarded.length).toBeGreaterThanOrEqual(1);
    expect(discarded.every((row) => row.messageId === letter.messageId)).toBe(true);
    const history = (await api.order(orderId))!.saga.history.filter((event) => event.kind === 'operator-action');
    expect(history).toHaveLength(discarded.length);
    expect(history.every((event) => event.outcome === 'discard' && event.messageId === letter.messageId && /customer withdrew/.test(event.detail!))).toBe(true);
  });

  test('sagas are listed by status; a stuck step is retried now; a saga is compensated on request', async () => {
    // The first attempt at the charge hangs: a person sends the command again (same message id; the inbox makes it safe).
    const stuck = await api.submit({ customerId: newCustomer(), items: tee, paymentMethod: 'tok_visa', faults: { 'payment.charge': { 'no-reply': 1 } } });
    const sagaOf = async (orderId: string) => (await api.order(orderId))!.saga;
    await eventually(async () => ((await sagaOf(stuck)).steps.find((step) => step.name === 'charge-payment')?.status === 'RUNNING' ? true : undefined), {
      what: 'the charge to be under way',
    });
    const running = await api.get<{ orderId: string }[]>('/console/sagas?status=RUNNING&limit=500');
    expect(running.map((row) => row.orderId)).toContain(stuck);
    expect((await post(`/console/sagas/${(await sagaOf(stuck)).id}/retry`, { reason: 'payment gateway back' })).status).toBe(201);
    const retried = await api.awaitFinal(stuck);
    expect(retried.status).toBe('CONFIRMED');
    const charges = retried.saga.history.filter((event) => event.kind === 'command-sent' && event.messageType === 'payment.charge');
    expect(charges.map((event) => event.messageId)).toEqual([charges[0].messageId, charges[0].messageId]);
    expect(retried.saga.history.filter((event) => event.kind === 'operator-action').map((event) => event.detail)).toEqual(['payment gateway back']);
    expect(await api.payments(stuck)).toHaveLength(1);

    // Never answered: compensated on request, before its timer would have.
    const hopeless = await api.submit({ customerId: newCustomer(), items: tee, paymentMethod: 'tok_visa', faults: { 'payment.charge': { 'no-reply': 99 } } });
    await eventually(async () => ((await sagaOf(hopeless)).steps.find((step) => step.name === 'charge-payment')?.status === 'RUNNING' ? true : undefined), {
      what: 'the charge to be under way',
    });
    expect((await post(`/console/sagas/${(await sagaOf(hopeless)).id}/compensate`, { reason: 'fraud suspected' })).status).toBe(201);
    const compensated = await api.awaitFinal(hopeless);
    expect(compensated.status).toBe('CANCELLED');
    expect(compensated.failureReason).toBe('FORCED_COMPENSATION: fraud suspected');

    // A finished saga cannot be compensated, an unknown one is 404.
    expect((await post(`/console/sagas/${retried.saga.id}/compensate`, { reason: 'too late' })).status).toBe(409);
    expect((await post('/console/sagas/01a1fffc-0000-7000-8000-000000000000/retry', {})).status).toBe(404);
  });

  test('sagas are searched by order, customer and time range, newest first or longest without progress first', async () => {
    const customerId = newCustomer();
    const before = new Date(Date.now() - 1_000).toISOString();
    const first = await api.submit({ customerId, items: tee, paymentMethod: 'tok_visa' });
    const second = await api.submit({ customerId, items: tee, paymentMethod: 'tok_chargeDeclined' });
    await Promise.all([api.awaitFinal(first), api.awaitFinal(second)]);
    const after = new Date(Date.now() + 1_000).toISOString();
    const orders = async (query: string) => (await api.get<{ orderId: string }[]>(`/console/sagas?${query}`)).map((row) => row.orderId);

    expect(await orders(`customerId=${customerId}&sort=-createdAt`)).toEqual([second, first]);
    expect(await orders(`customerId=${customerId}&status=COMPENSATED`)).toEqual([second]);
    expect(await orders(`orderId=${first}`)).toEqual([first]);
    expect(await orders(`customerId=${customerId}&createdFrom=${before}&createdTo=${after}`)).toHaveLength(2);
    expect(await orders(`customerId=${customerId}&createdFrom=${after}`)).toEqual([]);
    expect(await orders(`customerId=${customerId}&createdTo=${before}`)).toEqual([]);
    const [row] = await api.get<{ orderId: string; correlationId: string }[]>(`/console/sagas?orderId=${first}`);
    expect(row.correlationId).toBe(first); // no X-Correlation-Id given: the order id
  });

  test('an undo that keeps failing ends COMPENSATION_FAILED (listed for a person); one that fails twice recovers', async () => {
    const declined = { paymentMethod: 'tok_chargeDeclined', items: tee };
    const recovers = await api.submit({ customerId: newCustomer(), ...declined, faults: { 'inventory.release': { error: 2 } } });
    const recovered = await api.awaitFinal(recovers);
    expect(recovered.status).toBe('CANCELLED');
    expect(recovered.saga.steps.find((step) => step.name === 'reserve-inventory')?.status).toBe('COMPENSATED');

    const refuses = await api.submit({ customerId: newCustomer(), ...declined, faults: { 'order.cancel': { fail: 'order is locked' } } });
    const stuck = await api.awaitFinal(refuses);
    expect(stuck.saga.status).toBe('COMPENSATION_FAILED');
    expect(stuck.saga.steps.find((step) => step.name === 'create-order')).toMatchObject({ status: 'COMPENSATION_FAILED', error: 'INJECTED_FAILURE: order is locked' });
    // It was tried COMPENSATION_ATTEMPTS (3) times, with back-off, before giving up.
    expect(stuck.saga.history.filter((event) => event.kind === 'command-sent' && event.messageType === 'order.cancel')).toHaveLength(3);
    const needsAttention = await api.get<{ orderId: string }[]>('/console/sagas?status=COMPENSATION_FAILED&limit=500');
    expect(needsAttention.map((row) => row.orderId)).toContain(refuses);
  });

  test('dead letters come a page at a time, headers only, with every parking queue’s depth; a bad cursor is 400', async () => {
    const queue = 'notification.commands';
    const ids: string[] = Array.from({ length: 7 }, () => randomUUID());
    for (const messageId of ids) {
      broker.channel.sendToQueue(queue, Buffer.from('{}'), { messageId, type: 'notification.send', contentType: 'text/plain', persistent: true });
    }
    const seen = () => api.deadLetters<DeadLetterRow>(`queue=${queue}.dlq`);
    await eventually(async () => ((await seen()).filter((row) => ids.includes(row.messageId)).length === ids.length ? true : undefined), { what: 'the 7 letters listed' });

    const pages: { deadLetters: Record<string, unknown>[]; nextCursor: string | null; depths: Record<string, number> }[] = [];
    for (let cursor: string | null = ''; cursor !== null; cursor = pages[pages.length - 1].nextCursor) {
      pages.push(await api.get(`/console/dead-letters?queue=${queue}.dlq&limit=3${cursor ? `&cursor=${cursor}` : ''}`));
    }
    const listed = pages.flatMap((page) => page.deadLetters);
    expect(pages.every((page) => page.deadLetters.length <= 3)).toBe(true);
    expect(listed.length).toBe(pages[0].depths[`${queue}.dlq`]);
    expect(listed.filter((row) => ids.includes(String(row.messageId)))).toHaveLength(ids.length);
    expect(new Set(listed.map((row) => row.messageId)).size).toBe(listed.length);
    expect(listed.every((row) => !('content' in row) && !('body' in row))).toBe(true);
    expect(Object.keys(pages[0].depths)).toEqual(expect.arrayContaining(['sagaflow.unroutable', 'payment.commands.dlq', 'orchestrator.replies.dlq']));

    for (const cursor of ['nowhere:1', 'payment.commands.dlq:x', '%00']) {
      const response = await api.fetch(`/console/dead-letters?cursor=${cursor}`);
      expect({ status: response.status, fields: ((await response.json()) as { errors: { field: string }[] }).errors.map((error) => error.field) }).toEqual({ status: 400, fields: ['cursor'] });
    }
    const discarded = await post('/console/dead-letters/discard', { messageIds: ids, reason: 'paging test' });
    expect(discarded.body.notFound).toEqual([]);
  });
});
