// Hostile input, as a hostile client or producer would send it: over HTTP each bad value gets 400 naming
// the field (never a 5xx), and on the broker each bad message goes to its queue's .dlq at once, with the
// reason, never round the retry queues. The system keeps taking orders afterwards.
import type amqplib from 'amqplib';
import { randomUUID } from 'node:crypto';
import { HEADERS, SCHEMA_VERSION } from '../../shared/src/contracts/envelope.js';
import { BrokerAdmin, eventually, query, serverErrorsIn } from '../../shared/src/testkit/index.js';
import { QUEUES } from '../../shared/src/topology/topology.js';
import { api, newCustomer, vhost, openSuiteChannel, takeDeadLetter } from './context.js';

const broker = openSuiteChannel();

// ---- HTTP ---------------------------------------------------------------------------------------------

const order = (overrides: Record<string, unknown> = {}) => ({ customerId: newCustomer(), items: [{ sku: 'SKU-MUG', quantity: 1 }], paymentMethod: 'tok_visa', ...overrides });

/** Sends JSON text as it is (so that escapes like \ud800 reach the server unchanged). */
const postText = (path: string, text: string, headers: Record<string, string> = {}) =>
  api.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: text });

async function expectBadRequest(response: Response, field: string): Promise<void> {
  const body = (await response.json()) as { statusCode: number; errors?: { field: string; message: string }[] };
  expect({ status: response.status, fields: body.errors?.map((error) => error.field) }).toEqual({ status: 400, fields: expect.arrayContaining([field]) });
}

describe('HTTP: a bad value is 400 naming the field', () => {
  test.each([
    ['a NUL in customerId', 'customerId', JSON.stringify(order({ customerId: 'nul\u0000' }))],
    ['a lone surrogate in customerId', 'customerId', JSON.stringify(order({ customerId: 'x' })).replace('"customerId":"', '"customerId":"\\ud800')],
    ['a bell in customerId', 'customerId', JSON.stringify(order({ customerId: 'ding\u0007' }))],
    ['a newline in customerId', 'customerId', JSON.stringify(order({ customerId: 'two\nlines' }))],
    ['a C1 control in customerId', 'customerId', JSON.stringify(order({ customerId: 'c1\u0085' }))],
    ['DEL in customerId', 'customerId', JSON.stringify(order({ customerId: 'del\u007f' }))],
    ['101 characters of customerId', 'customerId', JSON.stringify(order({ customerId: 'c'.repeat(101) }))],
    ['a blank customerId', 'customerId', JSON.stringify(order({ customerId: '   ' }))],
    ['a number as customerId', 'customerId', JSON.stringify(order({ customerId: 42 }))],
    ['a NUL in paymentMethod', 'paymentMethod', JSON.stringify(order({ paymentMethod: 'tok\u0000' }))],
    ['a lone surrogate in paymentMethod', 'paymentMethod', JSON.stringify(order({ paymentMethod: 'x' })).replace('"paymentMethod":"', '"paymentMethod":"\\udc00')],
    ['a tab in paymentMethod', 'paymentMethod', JSON.stringify(order({ paymentMethod: 'tok\tvisa' }))],
    ['a quantity past the limit', 'items.0.quantity', JSON.stringify(order({ items: [{ sku: 'SKU-MUG', quantity: 1e9 }] }))],
    ['a negative quantity', 'items.0.quantity', JSON.stringify(order({ items: [{ sku: 'SKU-MUG', quantity: -1 }] }))],
    ['an unknown key in a line', 'items.0', JSON.stringify(order({ items: [{ sku: 'SKU-MUG', quantity: 1, discount: 100 }] }))],
    ['51 lines', 'items', JSON.stringify(order({ items: Array.from({ length: 51 }, () => ({ sku: 'SKU-MUG', quantity: 1 })) }))],
    ['a SKU with a NUL', 'items.0.sku', JSON.stringify(order({ items: [{ sku: 'SKU-\u0000', quantity: 1 }] }))],
    ['an unknown key in the order', '(body)', JSON.stringify(order({ coupon: 'FREE' }))],
  ])('POST /orders with %s', async (_case, field, text) => {
    await expectBadRequest(await postText('/orders', text), field);
  });

  test.each([
    ['300 characters', 'x'.repeat(300)],
    ['nothing', ''],
    ['a character outside ASCII', 'caf\u00e9'],
  ])('POST /orders with an X-Correlation-Id of %s', async (_case, value) => {
    await expectBadRequest(await postText('/orders', JSON.stringify(order()), { 'x-correlation-id': value }), 'X-Correlation-Id');
  });

  test('POST /orders with an Idempotency-Key of 256 characters', async () => {
    await expectBadRequest(await postText('/orders', JSON.stringify(order()), { 'idempotency-key': 'k'.repeat(256) }), 'Idempotency-Key');
  });

  test.each([
    ['/orders/%00', 'id'],
    ['/orders/not-an-id', 'id'],
    ['/orders/01a1fffc-0000-7000-8000-00000000000', 'id'],
    ['/orders?cursor=%00', 'cursor'],
    ['/orders?cursor=abc', 'cursor'],
    ['/orders?limit=1e13', 'limit'],
    ['/orders?status=LOST', 'status'],
    ['/inventory/%00', 'sku'],
    ['/inventory/lower-case', 'sku'],
    ['/payments?orderId=%00', 'orderId'],
    ['/notifications?orderId=1', 'orderId'],
    ['/console/sagas?stuckForSeconds=1e13', 'stuckForSeconds'],
    ['/console/sagas?runningForSeconds=-1', 'runningForSeconds'],
    ['/console/sagas?limit=100000', 'limit'],
    ['/console/sagas?status=%00', 'status'],
    ['/console/sagas?orderId=%00', 'orderId'],
    ['/console/sagas?customerId=%01', 'customerId'],
    ['/console/sagas?createdFrom=yesterday', 'createdFrom'],
    ['/console/sagas?createdTo=2026-13-01T00:00:00Z', 'createdTo'],
    ['/console/sagas?createdFrom=2026-01-02T00:00:00Z&createdTo=2026-01-01T00:00:00Z', 'createdTo'],
    ['/console/sagas?sort=DROP%20TABLE', 'sort'],
  ])('GET %s', async (path, field) => {
    await expectBadRequest(await api.fetch(path), field);
  });

  test.each([
    ['/console/sagas/not-a-uuid/retry', '{}', 'id'],
    ['/console/sagas/%00/compensate', JSON.stringify({ reason: 'why' }), 'id'],
    [`/console/sagas/${randomUUID()}/compensate`, JSON.stringify({ reason: 'nul\u0000' }), 'reason'],
    ['/console/dead-letters/discard', JSON.stringify({ messageIds: ['a\u0000'], reason: 'x' }), 'messageIds.0'],
    ['/console/dead-letters/discard', JSON.stringify({ messageIds: ['a'], reason: '\u0001' }), 'reason'],
    ['/console/dead-letters/replay', JSON.stringify({ messageIds: [] }), 'messageIds'],
    ['/console/dead-letters/replay', JSON.stringify({ messageIds: ['a'], reason: '\u0000' }), 'reason'],
    ['/ui/session', JSON.stringify({ token: 1 }), 'token'],
  ])('POST %s with %s', async (path, text, field) => {
    await expectBadRequest(await postText(path, text), field);
  });

  test.each([
    ['a body that is not JSON', '{"customerId":'],
    ['a JSON array', '[]'],
    ['a JSON string', '"order"'],
  ])('POST /orders with %s is 400', async (_case, text) => {
    expect((await postText('/orders', text)).status).toBe(400);
  });

  test('POST /orders with a body over 100 KB is 413', async () => {
    expect((await postText('/orders', JSON.stringify(order({ customerId: 'c'.repeat(200_000) })))).status).toBe(413);
  });

  test('a correlation id of 128 printable characters is taken, and the order confirms', async () => {
    const response = await postText('/orders', JSON.stringify(order()), { 'x-correlation-id': `corr ${'~'.repeat(123)}` });
    expect(response.status).toBe(202);
    const { orderId } = (await response.json()) as { orderId: string };
    expect((await api.awaitFinal(orderId)).status).toBe('CONFIRMED');
  });
});

// ---- AMQP ---------------------------------------------------------------------------------------------

const inventoryCommands = QUEUES.commandsOf('inventory');
const paymentCommands = QUEUES.commandsOf('payment');

/** A well-formed command's properties, for a case to spoil one of them. */
function wellFormed(type: string): amqplib.Options.Publish {
  return {
    messageId: randomUUID(),
    type,
    correlationId: randomUUID(),
    contentType: 'application/json',
    persistent: true,
    headers: { [HEADERS.sagaId]: randomUUID(), [HEADERS.schemaVersion]: SCHEMA_VERSION },
  };
}

const reserve = () => ({ orderId: randomUUID(), items: [{ sku: 'SKU-MUG', quantity: 1 }] });
const charge = () => ({ orderId: randomUUID(), customerId: 'c', amount: 100, currency: 'EUR', paymentMethod: 'tok_visa' });

type Spoil = (properties: amqplib.Options.Publish) => amqplib.Options.Publish;
const withHeader = (name: string, value: unknown): Spoil => (properties) => ({ ...properties, headers: { ...properties.headers, [name]: value } });

describe('AMQP: a bad message goes to the .dlq at once, with the reason', () => {
  test.each<[string, string, string, unknown, Spoil, 'malformed' | 'invalid-payload', RegExp]>([
    ['a message id that is not a UUID', inventoryCommands, 'inventory.reserve', reserve(), (p) => ({ ...p, messageId: 'not-a-uuid' }), 'malformed', /message id/],
    ['a saga id that is not a UUID', inventoryCommands, 'inventory.reserve', reserve(), withHeader(HEADERS.sagaId, 'saga-1'), 'malformed', /x-saga-id/],
    ['a causation id that is not a UUID', inventoryCommands, 'inventory.reserve', reserve(), withHeader(HEADERS.causationId, 'because'), 'malformed', /x-causation-id/],
    ['a correlation id of 200 characters', inventoryCommands, 'inventory.reserve', reserve(), (p) => ({ ...p, correlationId: 'c'.repeat(200) }), 'malformed', /correlation id/],
    ['a type that is no message type', inventoryCommands, 'Inventory Reserve!', reserve(), (p) => p, 'malformed', /type/],
    ['x-attempt "abc"', inventoryCommands, 'inventory.reserve', reserve(), withHeader(HEADERS.attempt, 'abc'), 'malformed', /x-attempt/],
    ['a negative x-attempt', inventoryCommands, 'inventory.reserve', reserve(), withHeader(HEADERS.attempt, -20), 'malformed', /x-attempt/],
    ['a fractional x-attempt', inventoryCommands, 'inventory.reserve', reserve(), withHeader(HEADERS.attempt, 1.5), 'malformed', /x-attempt/],
    ['an x-attempt past the limit', inventoryCommands, 'inventory.reserve', reserve(), withHeader(HEADERS.attempt, 1e9), 'malformed', /x-attempt/],
    ['x-resend "x"', inventoryCommands, 'inventory.reserve', reserve(), withHeader(HEADERS.resend, 'x'), 'malformed', /x-resend/],
    ['a negative x-retry-base', inventoryCommands, 'inventory.reserve', reserve(), withHeader(HEADERS.retryBase, -1), 'malformed', /x-retry-base/],
    ['x-schema-version "1" as text', inventoryCommands, 'inventory.reserve', reserve(), withHeader(HEADERS.schemaVersion, '1'), 'malformed', /x-schema-version/],
    ['content type text/plain', inventoryCommands, 'inventory.reserve', reserve(), (p) => ({ ...p, contentType: 'text/plain' }), 'malformed', /content type/],
    ['no content type', inventoryCommands, 'inventory.reserve', reserve(), (p) => ({ ...p, contentType: undefined }), 'malformed', /content type/],
    ['an unknown key in the payload', inventoryCommands, 'inventory.reserve', { ...reserve(), discount: 1 }, (p) => p, 'invalid-payload', /discount/],
    ['an unknown key in a line', inventoryCommands, 'inventory.reserve', { orderId: randomUUID(), items: [{ sku: 'SKU-MUG', quantity: 1, free: true }] }, (p) => p, 'invalid-payload', /free/],
    ['51 lines', inventoryCommands, 'inventory.reserve', { orderId: randomUUID(), items: Array.from({ length: 51 }, () => ({ sku: 'SKU-MUG', quantity: 1 })) }, (p) => p, 'invalid-payload', /items/],
    ['a quantity past the limit', inventoryCommands, 'inventory.reserve', { orderId: randomUUID(), items: [{ sku: 'SKU-MUG', quantity: 1e6 }] }, (p) => p, 'invalid-payload', /quantity/],
    ['an amount past what the column holds', paymentCommands, 'payment.charge', { ...charge(), amount: 2 ** 31 }, (p) => p, 'invalid-payload', /amount/],
    ['a NUL in the payment method', paymentCommands, 'payment.charge', { ...charge(), paymentMethod: 'tok\u0000' }, (p) => p, 'invalid-payload', /paymentMethod/],
    ['an order id that is not a UUID', paymentCommands, 'payment.charge', { ...charge(), orderId: '1' }, (p) => p, 'invalid-payload', /orderId/],
    ['a NUL in a cancel reason', QUEUES.commandsOf('order'), 'order.cancel', { orderId: randomUUID(), reason: 'no\u0000' }, (p) => p, 'invalid-payload', /reason/],
    ['an x-retry-base at or above x-attempt', inventoryCommands, 'inventory.reserve', reserve(), withHeader(HEADERS.retryBase, 3), 'malformed', /x-retry-base/],
  ])('%s', async (_case, queue, type, payload, spoil, reason, error) => {
    const properties = spoil(wellFormed(type));
    broker.channel.sendToQueue(queue, Buffer.from(JSON.stringify(payload)), properties);
    const message = await takeDeadLetter(broker.channel, queue, String(properties.messageId));
    const headers = message.properties.headers!;
    expect({ reason: headers[HEADERS.deadLetterReason], error: String(headers[HEADERS.deadLetterError]) }).toEqual({ reason, error: expect.stringMatching(error) });
    // Refused at once: never parked for a retry.
    expect(headers[HEADERS.failures]).toBeUndefined();
  });

  test('a message id used again with another body is a conflicting-duplicate; the same body, keys in another order, is answered again', async () => {
    const properties = wellFormed('inventory.reserve');
    const messageId = String(properties.messageId);
    const orderId = randomUUID();
    const send = (payload: unknown) => broker.channel.sendToQueue(inventoryCommands, Buffer.from(JSON.stringify(payload)), properties);
    send({ orderId, items: [{ sku: 'SKU-MUG', quantity: 1 }] });
    const [processed] = await eventually(async () => {
      const rows = await query(process.env.SAGAFLOW_DATABASE_URL!, `select reply->>'messageId' as reply_id, body_hash from inventory.inbox where message_id = $1`, [messageId]);
      return rows.length ? rows : undefined;
    }, { what: 'the command in the inbox' });
    expect(processed.body_hash).toMatch(/^[\w-]{32}$/);
    // Its reply answers no saga, so the orchestrator dead-letters it: that is where a test can see it.
    await takeDeadLetter(broker.channel, QUEUES.replies, processed.reply_id);

    send({ items: [{ quantity: 1, sku: 'SKU-MUG' }], orderId });
    await takeDeadLetter(broker.channel, QUEUES.replies, processed.reply_id);

    send({ orderId, items: [{ sku: 'SKU-MUG', quantity: 2 }] });
    const letter = await takeDeadLetter(broker.channel, inventoryCommands, messageId);
    expect(letter.properties.headers![HEADERS.deadLetterReason]).toBe('conflicting-duplicate');
    expect(String(letter.properties.headers![HEADERS.deadLetterError])).toMatch(/processed before with a different inventory.reserve body/);
  });

  test('a body over MAX_MESSAGE_BYTES (a reserve command of 100,000 lines) is refused unread, and kept whole', async () => {
    const properties = wellFormed('inventory.reserve');
    const content = Buffer.from(JSON.stringify({ orderId: randomUUID(), items: Array.from({ length: 100_000 }, () => ({ sku: 'SKU-MUG', quantity: 1 })) }));
    broker.channel.sendToQueue(inventoryCommands, content, properties);
    const message = await takeDeadLetter(broker.channel, inventoryCommands, String(properties.messageId));
    expect(message.properties.headers![HEADERS.deadLetterReason]).toBe('malformed');
    expect(message.properties.headers![HEADERS.deadLetterError]).toMatch(/MAX_MESSAGE_BYTES/);
    expect(message.content.equals(content)).toBe(true);
  });

  test('a reply with a message id that is not a UUID is refused by the orchestrator', async () => {
    const properties = { ...wellFormed('inventory.reserve.succeeded'), messageId: 'reply-1' };
    broker.channel.sendToQueue(QUEUES.replies, Buffer.from('{}'), properties);
    const message = await takeDeadLetter(broker.channel, QUEUES.replies, 'reply-1');
    expect(message.properties.headers![HEADERS.deadLetterReason]).toBe('malformed');
  });

  test('a query in text/plain is refused', async () => {
    const properties = { ...wellFormed('inventory.catalog'), contentType: 'text/plain' };
    broker.channel.sendToQueue(QUEUES.queriesOf('inventory'), Buffer.from('{}'), properties);
    const message = await takeDeadLetter(broker.channel, QUEUES.queriesOf('inventory'), String(properties.messageId));
    expect(message.properties.headers![HEADERS.deadLetterReason]).toBe('malformed');
    expect(message.properties.headers![HEADERS.deadLetterError]).toMatch(/content type/);
  });

  test.each([
    ['a correlation id of 200 characters', { correlationId: 'c'.repeat(200), replyTo: `orchestrator.answers.${randomUUID()}` }, /correlation id must be a UUID/],
    ['a reply-to that is no answers queue', { correlationId: randomUUID(), replyTo: 'payment.commands' }, /must reply to orchestrator\.answers/],
    ['no reply-to', { correlationId: randomUUID() }, /must reply to/],
  ])('a query with %s is refused, not answered into the void', async (_case, extra, error) => {
    const properties = { ...wellFormed('inventory.catalog'), ...extra };
    broker.channel.sendToQueue(QUEUES.queriesOf('inventory'), Buffer.from('{}'), properties);
    const message = await takeDeadLetter(broker.channel, QUEUES.queriesOf('inventory'), String(properties.messageId));
    expect(message.properties.headers![HEADERS.deadLetterReason]).toBe('malformed');
    expect(String(message.properties.headers![HEADERS.deadLetterError])).toMatch(error);
  });

  test('a dead letter whose saga id is not a UUID is listed and discarded without a 5xx', async () => {
    const properties = withHeader(HEADERS.sagaId, 'not-a-saga')(wellFormed('order.create'));
    broker.channel.sendToQueue(QUEUES.commandsOf('order'), Buffer.from('{}'), properties);
    const messageId = String(properties.messageId);
    const listed = await eventually(
      async () => (await api.deadLetters<{ messageId: string; sagaId: string | null }>()).find((letter) => letter.messageId === messageId),
      { what: 'the letter in the console' },
    );
    expect(listed.sagaId).toBeNull();
    const response = await postText('/console/dead-letters/discard', JSON.stringify({ messageIds: [messageId], reason: 'hostile' }));
    expect(response.status).toBe(201);
    expect(((await response.json()) as { discarded: { messageId: string }[] }).discarded.map((letter) => letter.messageId)).toEqual([messageId]);
  });
});

describe('afterwards', () => {
  test('every queue still has its consumer, an order still confirms, and no process logged a 5xx or an unhandled error', async () => {
    const admin = new BrokerAdmin();
    for (const queue of [inventoryCommands, paymentCommands, QUEUES.replies]) {
      await eventually(async () => ((await admin.queue(vhost, queue)).consumers >= 1 ? true : undefined), { what: `a consumer on ${queue}` });
    }
    const orderId = await api.submit(order());
    expect((await api.awaitFinal(orderId)).status).toBe('CONFIRMED');
    expect(serverErrorsIn(process.env.SAGAFLOW_LOG_DIR!)).toEqual([]);
  });
});
