// Property-based fuzzing of both edges with fast-check, against the real processes. Over HTTP: generated bodies,
// headers, paths and queries on every route never get a 5xx, and every 4xx is a JSON error. Over AMQP: generated
// envelopes, headers and payloads on every work queue (plain and bundled): a bad message reaches its queue's .dlq
// at once with its reason, a good one is handled, nothing stays in a work or retry queue, and every consumer stays.
// Afterwards a normal order still confirms and no process logged a 5xx.
// FUZZ_SEED=<n> replays a run (the seed is printed). Among the cases: headers amqplib cannot encode again and bundle
// parts whose properties no AMQP message could carry (numbers as ids, 300-byte ids), which once looped without end.
import amqplib, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options } from 'amqplib';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { COMMANDS, FailureReply, HEADERS, QUERIES } from '../../shared/src/contracts/index.js';
import { BUNDLE_TYPE } from '../../shared/src/messaging/bundle.js';
import { BrokerAdmin, eventually, serverErrorsIn } from '../../shared/src/testkit/index.js';
import { buildTopology, EXCHANGES, QUEUES } from '../../shared/src/topology/topology.js';
import { amqpUrl, api, clientKey, vhost } from './context.js';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
/** Generated cases per property: at least 1,000 per edge. */
const RUNS = { httpBodies: 800, httpPaths: 700, amqp: 1500 };
/** MAX_MESSAGE_BYTES of the test system (the default). */
const MAX_MESSAGE_BYTES = 256 * 1024;
const run = randomUUID().slice(0, 8);

const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
/** Prints a generated case briefly in a counterexample (bodies may be 256 KiB). */
const described = <T extends object>(value: T, describe: (value: T) => string): T =>
  Object.assign(value, { [fc.toStringMethod]: () => describe(value) });
const clip = (text: string, max = 300) => (text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text);
const utf8 = (text: string) => Buffer.from(text, 'utf8');
/** How the generated cases ended, counted by kind: printed, so that a reader sees what the fuzz reached. */
const tally = new Map<string, Map<string, number>>();
const count = (table: string, what: string) => {
  const counts = tally.get(table) ?? tally.set(table, new Map()).get(table)!;
  counts.set(what, (counts.get(what) ?? 0) + 1);
};
const printTally = (table: string) =>
  console.info(`${table}: ${[...(tally.get(table) ?? new Map<string, number>())].sort(([a], [b]) => a.localeCompare(b)).map(([what, n]) => `${what} ${n}`).join(', ')}`);
/** A string as it comes back from the wire (lone surrogates become U+FFFD). */
const wire = (text: string) => Buffer.from(text, 'utf8').toString('utf8');

// ---- Building blocks -------------------------------------------------------------------------------------

const uuid = fc.uuid();
/** Unbiased: fast-check's bias would give most cases the same few ids. */
const freshId = fc.noBias(fc.uuid());
const printableAscii = (minLength: number, maxLength: number) =>
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), minLength, maxLength });
/** What a hostile client types: any code point (controls, NUL, lone surrogates), blanks, lengths at the limits. */
const hostileText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }),
  fc.constantFrom('', ' ', '\u0000', 'nul\u0000', '\ud800', 'x\udc00y', '\u0007', 'two\nlines', 'tab\tin', '\u0085', '\u007f', '\u202e', '\ufeff', '🙂'),
  fc.constantFrom('x'.repeat(100), 'x'.repeat(101), `${' '.repeat(60)}x${' '.repeat(60)}`, 'é'.repeat(101), '🙂'.repeat(51)),
);
const smallJson = fc.jsonValue({ maxDepth: 2 });
const edgeNumber = fc.constantFrom<unknown>(0, -1, 1000, 1001, 1.5, -0, 2 ** 31, 2 ** 31 - 1, 2 ** 53, 1e308, 5e-324, '1', null, true, [], {});

/** Stock other suites count on: touched one unit at a time, by lines no mutation reaches. */
const REAL_SKUS = ['SKU-COFFEE', 'SKU-MUG', 'SKU-TEE'] as const;
const PROTECTED_SKUS = new Set<unknown>([...REAL_SKUS, 'SKU-LIMITED']);
/** SKUs that pass validation but hold no stock: their orders run and cancel (unknown SKU, out of stock). */
const stocklessSku = fc.oneof(fc.constantFrom('SKU-SOLDOUT', 'FUZZ-NONE'), fc.stringMatching(/^[A-Z0-9][A-Z0-9-]{0,63}$/)).filter((value) => !PROTECTED_SKUS.has(value));
const badSku = fc.oneof(w(3, hostileText), w(2, fc.constantFrom('sku-mug', 'SKU_MUG', 'S'.repeat(65), ' SKU-MUG', 'SKU-MUG ', '-SKU')), w(1, smallJson));
const sku = fc.oneof(w(3, stocklessSku), w(1, badSku));

// ---- HTTP ------------------------------------------------------------------------------------------------

const CUSTOMERS = [1, 2, 3].map((n) => `fuzz-${run}-${n}`);
const KEYS = [1, 2, 3].map((n) => `fuzz-key-${run}-${n}`);
const COMMAND_TYPES = [...COMMANDS.keys()];
/** Orders accepted by the fuzz: each must settle. Paths may name the latest one ('{order}'). */
const placed: string[] = [];

/** Lines of stock other suites count on: one unit, and no spoiler touches them (see harmless()). */
const realLine = fc.constantFrom(...REAL_SKUS).map((item) => ({ sku: item, quantity: 1 }));
const validLine = fc.oneof(w(12, fc.record({ sku: stocklessSku, quantity: fc.integer({ min: 1, max: 1000 }) })), w(2, realLine));
/** Faults that cannot crash a process (this system restarts none) nor leave a saga waiting for a person. */
const FORWARD_STEPS = ['order.create', 'inventory.reserve', 'payment.charge'];
const safeFaults = fc
  .array(
    fc.oneof(
      fc.tuple(fc.constantFrom(...FORWARD_STEPS), fc.oneof(fc.record({ fail: fc.oneof(fc.constant<true | string>(true), printableAscii(1, 30)) }), fc.constant({ 'no-reply': 1 }))),
      fc.tuple(fc.constantFrom(...COMMAND_TYPES), fc.oneof(fc.record({ delay: fc.integer({ min: 1, max: 30 }) }), fc.constant({ 'duplicate-reply': true }), fc.constant({ error: 1 }))),
    ),
    { minLength: 1, maxLength: 2 },
  )
  .map((entries) => Object.fromEntries(entries));
const badFaults = fc.oneof(
  fc.constantFrom<unknown>(
    { 'payment.charge': { 'crash-before-commit': false } },
    { 'Payment.Charge': { fail: true } },
    { 'payment.charge': { error: 0 } },
    { 'payment.charge': { delay: 600_001 } },
    { 'payment.charge': { fail: '' } },
    { 'payment.charge': { teleport: true } },
    { 'payment.charge': null },
    [],
    'crash',
  ),
  smallJson,
);
const validOrder = fc.record(
  {
    customerId: fc.oneof(w(8, fc.constantFrom(...CUSTOMERS)), w(1, printableAscii(1, 100).filter((text) => text.trim() !== '')), w(1, fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }))),
    items: fc.array(validLine, { minLength: 1, maxLength: 5 }),
    paymentMethod: fc.oneof(w(6, fc.constantFrom('tok_visa', 'tok_chargeDeclined')), w(1, printableAscii(1, 100).filter((text) => text.trim() !== ''))),
    faults: fc.oneof(w(5, fc.constant(undefined)), w(1, safeFaults)),
  },
  { requiredKeys: ['customerId', 'items', 'paymentMethod'] },
);

/** One thing wrong with an order: a field, a line, a key too many or too few. */
type Spoiler = { at: 'customerId' | 'paymentMethod' | 'items' | 'faults' | 'sku' | 'quantity' | 'line' | 'drop' | 'key'; key: string; index: number; value: unknown };
const spoiler: fc.Arbitrary<Spoiler> = fc.oneof(
  fc.record({ at: fc.constantFrom('customerId' as const, 'paymentMethod' as const), key: fc.constant(''), index: fc.nat(), value: fc.oneof(w(3, hostileText), w(1, smallJson)) }),
  fc.record({
    at: fc.constant('items' as const),
    key: fc.constant(''),
    index: fc.nat(),
    value: fc.oneof(
      fc.constantFrom<unknown>([], {}, 'SKU-FUZZ', null),
      smallJson,
      fc.integer({ min: 49, max: 52 }).chain((n) => fc.array(fc.record({ sku: fc.constant('FUZZ-BULK'), quantity: fc.integer({ min: 1, max: 3 }) }), { minLength: n, maxLength: n })),
    ),
  }),
  fc.record({ at: fc.constant('faults' as const), key: fc.constant(''), index: fc.nat(), value: badFaults }),
  fc.record({ at: fc.constant('sku' as const), key: fc.constant(''), index: fc.nat(), value: badSku }),
  fc.record({ at: fc.constant('quantity' as const), key: fc.constant(''), index: fc.nat(), value: fc.oneof(w(3, edgeNumber), w(1, fc.double())) }),
  fc.record({ at: fc.constant('line' as const), key: fc.constantFrom('discount', 'price', '__proto__', 'SKU'), index: fc.nat(), value: fc.oneof(smallJson, fc.constant(undefined)) }),
  fc.record({ at: fc.constant('drop' as const), key: fc.constantFrom('customerId', 'items', 'paymentMethod'), index: fc.nat(), value: fc.constant(undefined) }),
  fc.record({
    at: fc.constant('key' as const),
    key: fc.oneof(fc.constantFrom('coupon', '__proto__', 'constructor', 'toString', 'CustomerId', 'customerId ', '', 'items.0'), fc.string({ maxLength: 10 })),
    index: fc.nat(),
    value: smallJson,
  }),
);
const ownProperty = (object: Record<string, unknown>, key: string, value: unknown) => Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
/** The order with its spoilers applied (own properties even for `__proto__`, so that they reach the wire). */
function spoil(order: Record<string, unknown>, spoilers: Spoiler[]): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...order };
  for (const { at, key, index, value } of spoilers) {
    const lines = Array.isArray(copy.items) ? (copy.items as unknown[]).map((item) => (typeof item === 'object' && item !== null ? { ...item } : item)) : undefined;
    // A line of real stock keeps its one unit.
    const spoilable = lines?.filter((item) => typeof item === 'object' && item !== null && !PROTECTED_SKUS.has((item as { sku?: unknown }).sku)) as Record<string, unknown>[] | undefined;
    const target = spoilable?.length ? spoilable[index % spoilable.length] : undefined;
    if (at === 'sku' || at === 'quantity') {
      if (target) target[at] = value;
    } else if (at === 'line') {
      if (target && value === undefined) delete target.quantity;
      else if (target) ownProperty(target, key, value);
    } else if (at === 'drop') delete copy[key];
    else if (at === 'key') ownProperty(copy, key, value);
    else copy[at] = value;
    if (lines && at !== 'items' && copy.items !== undefined && Array.isArray(copy.items)) copy.items = lines;
  }
  return copy;
}
function asText(value: unknown, style: string): string {
  const text = JSON.stringify(value) ?? 'null';
  if (style === 'pretty') return JSON.stringify(value, null, 2) ?? 'null';
  if (style === 'bom') return `\ufeff${text}`;
  // JSON.parse keeps the last of two equal keys.
  if (style === 'duplicate-key') return text.startsWith('{') && text.length > 2 ? `{"customerId":0,${text.slice(1)}` : text;
  if (style === 'trailing') return `${text} x`;
  return text;
}
const rawLine = '{"sku":"FUZZ-RAW","quantity":1}';
const rawJson = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    'null',
    'true',
    '0',
    '"order"',
    '[]',
    '{}',
    '{"customerId":',
    '{"a":1,}',
    '/* c */{}',
    "{'a':1}",
    'NaN',
    `{"customerId":"\\ud800","items":[${rawLine}],"paymentMethod":"tok_visa"}`,
    `{"customerId":"${CUSTOMERS[0]}","items":[{"sku":"FUZZ-RAW","quantity":1e400}],"paymentMethod":"tok_visa"}`,
    `{"customerId":"${CUSTOMERS[0]}","items":[{"sku":"FUZZ-RAW","quantity":1.0}],"paymentMethod":"tok_visa"}`,
    `{"customerId":"${CUSTOMERS[0]}","items":[{"sku":"FUZZ-RAW","quantity":${'9'.repeat(400)}}],"paymentMethod":"tok_visa"}`,
    `{"__proto__":{"customerId":"${CUSTOMERS[0]}"},"items":[${rawLine}],"paymentMethod":"tok_visa"}`,
    `{"customerId":"${CUSTOMERS[0]}","items":[${rawLine}],"paymentMethod":"tok_visa","faults":{"__proto__":{"fail":true}}}`,
  ),
  fc.integer({ min: 1, max: 45_000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
  fc.integer({ min: 1, max: 20_000 }).map((depth) => `{"customerId":"${CUSTOMERS[0]}","items":${'['.repeat(depth)}${']'.repeat(depth)},"paymentMethod":"tok_visa"}`),
  fc.integer({ min: 1, max: 15_000 }).map((depth) => `{"faults":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`),
);
const oversize = fc.integer({ min: 102_400, max: 150_000 }).map((size) => JSON.stringify({ customerId: CUSTOMERS[0], items: [{ sku: 'FUZZ-BIG', quantity: 1 }], paymentMethod: 'p'.repeat(size) }));
const orderBody = fc.oneof(
  w(
    14,
    fc
      .tuple(
        validOrder,
        fc.oneof(w(4, fc.constant<Spoiler[]>([])), w(5, fc.array(spoiler, { minLength: 1, maxLength: 1 })), w(2, fc.array(spoiler, { minLength: 2, maxLength: 3 }))),
        fc.constantFrom('plain', 'plain', 'plain', 'plain', 'plain', 'plain', 'pretty', 'bom', 'duplicate-key', 'trailing'),
      )
      .map(([value, spoilers, style]) => utf8(asText(spoil(value, spoilers), style))),
  ),
  w(2, fc.json({ maxDepth: 3 }).map(utf8)),
  w(2, rawJson.map(utf8)),
  w(1, fc.string({ unit: 'binary', maxLength: 200 }).map(utf8)),
  w(1, fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes))),
  w(1, oversize.map(utf8)),
);

/** Header values Node can send: tab, printable ASCII and Latin-1. */
const headerChar = fc.oneof(w(8, fc.integer({ min: 0x20, max: 0x7e })), w(1, fc.integer({ min: 0x80, max: 0xff })), w(1, fc.constant(0x09))).map((code) => String.fromCharCode(code));
const headerValue = fc.oneof(w(3, fc.string({ unit: headerChar, maxLength: 40 })), w(1, fc.string({ unit: headerChar, minLength: 120, maxLength: 300 })));
const CONTENT_TYPES = [
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  'application/json;charset="UTF-8"',
  'APPLICATION/JSON',
  'text/plain',
  'text/json',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/vnd.api+json',
  '*/*',
  '',
];
/** Mostly the operator's key (who may do everything), so that requests get past the guard to their validation. */
const authorization = fc.oneof(
  w(14, fc.constant(`Bearer ${api.token}`)),
  w(3, fc.constant(`Bearer ${clientKey}`)),
  w(1, fc.constant(undefined)),
  w(
    1,
    fc.constantFrom(
      'Bearer',
      'Bearer ',
      `bearer ${api.token}`,
      `Bearer ${api.token}x`,
      `Bearer ${api.token} ${api.token}`,
      `Basic ${Buffer.from(`operator:${api.token}`).toString('base64')}`,
      'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4Iiwicm9sZXMiOlsib3BlcmF0b3IiXX0.',
      'Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl',
      `Bearer ${'a'.repeat(8193)}`,
    ),
  ),
  w(1, headerValue.map((value) => `Bearer ${value}`)),
);
const requestHeaders = fc.record({
  authorization,
  'content-type': fc.oneof(w(12, fc.constant('application/json')), w(3, fc.constantFrom(...CONTENT_TYPES)), w(1, headerValue), w(1, fc.constant(undefined))),
  'content-encoding': fc.oneof(w(14, fc.constant(undefined)), w(1, fc.constantFrom('identity', 'gzip', 'deflate', 'br', 'zstd', 'bogus', 'gzip, identity'))),
  'idempotency-key': fc.oneof(w(6, fc.constant(undefined)), w(3, fc.constantFrom(...KEYS)), w(2, headerValue)),
  'x-correlation-id': fc.oneof(w(5, fc.constant(undefined)), w(2, printableAscii(1, 128)), w(2, headerValue)),
  accept: fc.oneof(w(8, fc.constant(undefined)), w(1, fc.constantFrom('text/html', 'application/xml', '*/*', 'application/json;q=0'))),
});

/** Percent-encodes every byte but the unreserved ones (what a careful client does). */
const pct = (text: string) =>
  [...utf8(text)].map((byte) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
/** Printable ASCII as it is; Node refuses anything else unencoded in a request line. */
const rawAscii = fc.string({
  unit: fc.integer({ min: 0x21, max: 0x7e }).filter((code) => !'/?#'.includes(String.fromCharCode(code))).map((code) => String.fromCharCode(code)),
  minLength: 1,
  maxLength: 20,
});
const badPercent = fc.constantFrom('%', '%z', '%zz', '%E2%82', '%C0%AF', '%00', '%2F', '%2e%2e', '%FF%FE', '%u0041', '%%');
const segment = fc.oneof(w(3, uuid), w(2, fc.constant('{order}')), w(3, hostileText.map(pct)), w(2, rawAscii), w(1, badPercent), w(1, fc.constant('')));
const queryValue = fc.oneof(
  w(2, fc.integer({ min: -10, max: 1000 }).map(String)),
  w(
    3,
    fc.constantFrom(
      '',
      '0',
      '1',
      '100',
      '101',
      '500',
      '501',
      '1e2',
      '1e13',
      '0x10',
      '1.5',
      'NaN',
      'Infinity',
      '-0',
      '%205',
      '00010',
      '315360000',
      '315360001',
      'true',
      'yes',
      'false',
      'maybe',
      'PENDING',
      'CONFIRMED',
      'CANCELLED',
      'pending',
      'RUNNING',
      'COMPENSATING',
      'FAILED',
      'COMPENSATION_FAILED',
      '{order}',
      'inventory.commands.dlq',
      'orchestrator.replies.dlq',
      'inventory.commands',
      'inventory.commands.dlq%3A0',
      'orchestrator.replies.dlq%3A99999999999',
      'payment.queries.dlq%3A-1',
      '%3A',
      'x%3A1',
      CUSTOMERS[0],
    ),
  ),
  w(2, uuid),
  w(2, hostileText.map(pct)),
  w(1, rawAscii),
  w(1, badPercent),
);
const query = (names: string[]) =>
  fc
    .array(
      fc.tuple(
        fc.oneof(w(6, fc.constantFrom(...names)), w(1, fc.constantFrom('limit[]', 'status[x]', '__proto__', 'constructor', 'customerId', 'cursor', 'x')), w(1, hostileText.map(pct))),
        queryValue,
        fc.boolean(),
      ),
      { maxLength: 4 },
    )
    .map((pairs) => (pairs.length ? `?${pairs.map(([name, value, bare]) => (bare && value === '' ? name : `${name}=${value}`)).join('&')}` : ''));
const path = fc.oneof(
  w(3, segment.map((id) => `/orders/${id}`)),
  w(3, query(['status', 'customerId', 'limit', 'cursor']).map((q) => `/orders${q}`)),
  w(1, query(['x']).map((q) => `/inventory${q}`)),
  w(2, fc.oneof(fc.constantFrom(...REAL_SKUS, 'SKU-LIMITED', 'SKU-SOLDOUT'), sku.map((value) => pct(String(value))), segment).map((value) => `/inventory/${value}`)),
  w(2, query(['orderId']).map((q) => `/payments${q}`)),
  w(2, query(['orderId']).map((q) => `/notifications${q}`)),
  w(3, query(['status', 'stuckForSeconds', 'runningForSeconds', 'setAside', 'orderId', 'customerId', 'createdFrom', 'createdTo', 'sort', 'limit']).map((q) => `/console/sagas${q}`)),
  w(2, query(['limit', 'cursor', 'queue']).map((q) => `/console/dead-letters${q}`)),
  w(
    2,
    fc
      .tuple(fc.array(fc.oneof(fc.constantFrom('orders', 'inventory', 'payments', 'notifications', 'console', 'sagas', 'dead-letters', 'replay', 'retry', 'health', 'live', 'ready', '..', '.', '%2e%2e', ''), segment), { maxLength: 4 }), query(['limit', 'x']))
      .map(([parts, q]) => `/${parts.join('/')}${q}`),
  ),
);

interface HttpRequest {
  method: string;
  path: string;
  headers: Record<string, string | undefined>;
  body?: Buffer;
}
const describeRequest = ({ method, path: target, headers, body }: HttpRequest) =>
  `${method} ${target} ${JSON.stringify(Object.fromEntries(Object.entries(headers).filter(([, value]) => value !== undefined)))}${body ? ` body (${body.length} bytes): ${clip(JSON.stringify(body.toString('utf8')))}` : ''}`;
const request = (value: HttpRequest) => described(value, describeRequest);

const messageIds = fc.oneof(
  w(4, fc.array(fc.oneof(uuid, hostileText, printableAscii(1, 255), printableAscii(256, 300)), { minLength: 1, maxLength: 4 })),
  w(1, fc.constantFrom<unknown>([], null, 'id', [1], Array.from({ length: 1001 }, (_, i) => `id-${i}`))),
);
const note = fc.oneof(w(3, printableAscii(1, 50)), w(2, hostileText), w(1, printableAscii(501, 520)), w(1, smallJson));
const consoleBody = fc.oneof(
  fc.record({
    path: fc.constant('/console/dead-letters/replay'),
    value: fc.oneof(fc.record({ messageIds }), fc.record({ all: fc.constantFrom<unknown>(false, 'true', 1, null) }), fc.record({ messageIds, all: fc.constant(true) }), smallJson),
  }),
  fc.record({ path: fc.constant('/console/dead-letters/discard'), value: fc.oneof(fc.record({ messageIds, reason: note }), fc.record({ messageIds }), smallJson) }),
  fc.record({
    path: fc.tuple(segment, fc.constantFrom('retry', 'compensate')).map(([id, action]) => `/console/sagas/${id}/${action}`),
    value: fc.oneof(fc.record({ reason: note }, { requiredKeys: [] }), smallJson),
  }),
);
const postRequest = fc.oneof(
  w(10, fc.record({ method: fc.constant('POST'), path: fc.constant('/orders'), headers: requestHeaders, body: orderBody }).map(request)),
  w(
    2,
    fc
      .record({ target: consoleBody, headers: requestHeaders })
      .map(({ target, headers }) => request({ method: 'POST', path: target.path, headers, body: utf8(JSON.stringify(target.value) ?? 'null') })),
  ),
);
const pathRequest = fc
  .record({
    method: fc.oneof(w(12, fc.constant('GET')), w(1, fc.constantFrom('HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'POST'))),
    path,
    headers: requestHeaders.map(({ authorization: token, accept, 'x-correlation-id': correlationId }) => ({ authorization: token, accept, 'x-correlation-id': correlationId })),
  })
  .map(request);

/**
 * False for the few generated bodies that could disturb the suites sharing this system: a crash fault (nothing
 * restarts a process here), a replay of every dead letter, or a real SKU beyond one unit a line.
 */
function harmless(body: Buffer | undefined): boolean {
  let value: unknown;
  try {
    value = JSON.parse(body?.toString('utf8') ?? 'null');
  } catch {
    return true;
  }
  let text: string;
  try {
    text = JSON.stringify(value) ?? '';
  } catch {
    return true; // nested too deep to print: a generated depth test, with no line nor fault in it
  }
  if (/"crash-[a-z-]+":true/.test(text) || text.includes('SKU-LIMITED')) return false;
  if (typeof value === 'object' && value !== null && (value as { all?: unknown }).all === true) return false;
  const lines = (value as { items?: unknown })?.items;
  return !Array.isArray(lines) || lines.every((item) => !PROTECTED_SKUS.has(item?.sku) || item.quantity === 1);
}

const base = new URL(api.baseUrl);
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

interface HttpAnswer {
  status: number;
  contentType: string;
  location?: string;
  text: string;
}

/** Sends the request as it is (node:http, not fetch, so that paths and bodies reach the server unchanged). */
function send({ method, path: target, headers, body }: HttpRequest, retried = false): Promise<HttpAnswer> {
  const defined = Object.fromEntries(Object.entries(headers).filter((entry): entry is [string, string] => entry[1] !== undefined));
  const placeholder = placed.at(-1) ?? '00000000-0000-4000-8000-000000000000';
  return new Promise((resolve, reject) => {
    let answered = false;
    const outgoing = http.request(
      { host: base.hostname, port: base.port, agent, method, path: target.replaceAll('{order}', placeholder), headers: body ? { ...defined, 'content-length': String(body.length) } : defined, timeout: 30_000 },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          answered = true;
          resolve({ status: response.statusCode ?? 0, contentType: String(response.headers['content-type'] ?? ''), location: response.headers.location, text: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error('no answer within 30 s')));
    outgoing.on('error', (error: NodeJS.ErrnoException) => {
      if (answered) return; // a 413 may come before the body is sent, and the connection close after it
      // A kept-alive socket the server closed just as it was reused: the request never reached it.
      if (outgoing.reusedSocket && error.code === 'ECONNRESET' && !retried) resolve(send({ method, path: target, headers, body }, true));
      else reject(error);
    });
    outgoing.end(body);
  });
}

/** Why the answer breaks the HTTP invariants, or undefined. */
function answerProblem({ method }: HttpRequest, answer: HttpAnswer): string | undefined {
  if (answer.status >= 500) return `a ${answer.status}`;
  if (answer.status < 400 || method === 'HEAD') return undefined;
  if (!answer.contentType.startsWith('application/json')) return `a ${answer.status} that is not JSON (${answer.contentType || 'no content type'})`;
  let body: { statusCode?: unknown; message?: unknown; errors?: unknown };
  try {
    body = JSON.parse(answer.text);
  } catch {
    return `a ${answer.status} whose body is not JSON`;
  }
  if (typeof body !== 'object' || body === null || body.statusCode !== answer.status) return `a ${answer.status} whose body does not give its status`;
  if (typeof body.message !== 'string' && body.errors === undefined) return `a ${answer.status} that says nothing`;
  const errors = body.errors;
  if (errors !== undefined && !(Array.isArray(errors) && errors.length > 0 && errors.every((error) => typeof error?.field === 'string' && typeof error?.message === 'string' && error.message))) {
    return `a ${answer.status} whose errors are not [{field, message}]`;
  }
  return undefined;
}

function expectWellAnswered(sent: HttpRequest, answer: HttpAnswer): void {
  const problem = answerProblem(sent, answer);
  if (problem) throw new Error(`${problem}\n  ${describeRequest(sent)}\n  answered ${answer.status}: ${clip(answer.text)}`);
}

const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function forEachLimited<T>(values: T[], limit: number, work: (value: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, values.length) }, async () => {
    while (next < values.length) await work(values[next++]);
  }));
}

beforeAll(() => {
  console.info(`fuzz seed ${SEED} (FUZZ_SEED=${SEED} replays this run)`);
});
afterAll(() => agent.destroy());

describe('HTTP edge', () => {
  test(`POST bodies and headers (${RUNS.httpBodies} cases): never a 5xx, every 4xx a JSON error, every accepted order settles`, async () => {
    await fc.assert(
      fc.asyncProperty(postRequest, async (sent) => {
        fc.pre(harmless(sent.body));
        const answer = await send(sent);
        count('POST', `${sent.path.startsWith('/console/sagas/') ? '/console/sagas/:id' : sent.path} ${answer.status}`);
        expectWellAnswered(sent, answer);
        if (sent.path === '/orders' && answer.status === 202) {
          const body = JSON.parse(answer.text) as { orderId?: unknown; status?: unknown };
          expect({ orderId: UUID_SHAPE.test(String(body.orderId)), status: body.status, location: answer.location }).toEqual({ orderId: true, status: 'PENDING', location: `/orders/${body.orderId}` });
          if (!placed.includes(String(body.orderId))) placed.push(String(body.orderId));
        }
      }),
      { seed: SEED, numRuns: RUNS.httpBodies },
    );
    printTally('POST');
    // What was accepted runs to its end: nothing the fuzz sent leaves a saga stuck (or a process too busy for it).
    const unsettled: string[] = [];
    await forEachLimited(placed, 8, async (orderId) => {
      const final = await api.awaitFinal(orderId, 90_000).catch((error: Error) => ({ status: error.message }));
      if (final.status !== 'CONFIRMED' && final.status !== 'CANCELLED') unsettled.push(`${orderId}: ${final.status}`);
    });
    expect(unsettled).toEqual([]);
  }, 600_000);

  test(`paths, queries and methods (${RUNS.httpPaths} cases): never a 5xx, every 4xx a JSON error`, async () => {
    await fc.assert(
      fc.asyncProperty(pathRequest, async (sent) => {
        const answer = await send(sent);
        count('paths', `${sent.method} ${answer.status}`);
        expectWellAnswered(sent, answer);
      }),
      { seed: SEED, numRuns: RUNS.httpPaths },
    );
    printTally('paths');
  }, 600_000);
});

// ---- AMQP ------------------------------------------------------------------------------------------------

interface Target {
  queue: string;
  kind: 'command' | 'reply' | 'query';
  exchange: string;
  /** Routing keys `<prefix>.<word>` reach the queue; null: any key does. */
  prefix: string | null;
  /** The message types its consumer handles. */
  handled: string[];
}

const TOPOLOGY = buildTopology();
const WORK_QUEUES = TOPOLOGY.queues.filter((queue) => queue.role === 'work').map((queue) => queue.name);
const RETRY_QUEUES = TOPOLOGY.queues.filter((queue) => queue.role === 'retry').map((queue) => queue.name);
const DEAD_LETTER_QUEUES = WORK_QUEUES.map((queue) => QUEUES.deadLettersOf(queue));
const REPLY_TYPES = COMMAND_TYPES.flatMap((type) => [`${type}.succeeded`, `${type}.failed`]);
const ALL_TYPES = [...COMMAND_TYPES, ...QUERIES.keys(), ...REPLY_TYPES];
const TARGETS: Target[] = WORK_QUEUES.map((queue) => {
  if (queue === QUEUES.replies) return { queue, kind: 'reply', exchange: EXCHANGES.replies, prefix: null, handled: REPLY_TYPES };
  const service = queue.slice(0, queue.indexOf('.'));
  if (queue === QUEUES.queriesOf(service)) {
    return { queue, kind: 'query', exchange: EXCHANGES.queries, prefix: service, handled: [...QUERIES.values()].filter((query) => query.service === service).map((query) => query.type) };
  }
  return { queue, kind: 'command', exchange: EXCHANGES.commands, prefix: service, handled: [...COMMANDS.values()].filter((command) => command.service === service).map((command) => command.type) };
});
/** Where valid queries of the fuzz are answered: a queue of the suite's, named as an orchestrator's would be. */
const ANSWERS = `orchestrator.answers.${randomUUID()}`;
/** The exchange services answer queries through, keyed by their reply-to (else the default exchange). */
const ANSWERS_EXCHANGE = TOPOLOGY.exchanges.find((exchange) => exchange.name === 'sagaflow.answers')?.name;
/** The header that tells the suite's messages (and bundle parts) apart; every consumer keeps headers it does not know. */
const CASE_HEADER = 'x-fuzz-case';
const RESERVED_HEADERS = new Set<string>([...Object.values(HEADERS), CASE_HEADER, 'x-delivery-count', 'x-death']);

/** A message as generated: AMQP properties (any JSON type, for bundle parts), headers and body. */
interface Draft {
  properties: { messageId?: unknown; type?: unknown; correlationId?: unknown; contentType?: unknown; replyTo?: unknown; appId?: unknown; timestamp?: unknown };
  headers: Record<string, unknown>;
  body: Buffer;
}

// Payloads close to each contract, so that most reach deep validation. SKUs are never ones with stock.
const currency = fc.oneof(w(4, fc.constant('EUR')), w(1, fc.stringMatching(/^[A-Z]{3}$/)));
const minorUnits = fc.oneof(w(4, fc.integer({ min: 0, max: 100_000 })), w(1, fc.constantFrom(0, 2 ** 31 - 1)));
const name = fc.oneof(w(8, printableAscii(1, 30).filter((text) => text.trim() !== '')), w(1, hostileText));
const fuzzSku = fc.oneof(fc.constantFrom('SKU-SOLDOUT', 'FUZZ-NONE'), fc.stringMatching(/^FUZZ-[A-Z0-9-]{0,20}$/));
const fuzzLines = fc.array(fc.record({ sku: fuzzSku, quantity: fc.integer({ min: 1, max: 1000 }) }), { minLength: 1, maxLength: 4 });
const orderStatus = fc.constantFrom('PENDING', 'CONFIRMED', 'CANCELLED');
const PAYLOADS: Record<string, fc.Arbitrary<unknown>> = {
  'order.create': fc.record({ orderId: uuid, customerId: name, items: fuzzLines }),
  'order.confirm': fc.record({ orderId: uuid, total: minorUnits, currency }),
  'order.cancel': fc.record({ orderId: uuid, reason: fc.string({ maxLength: 40 }) }),
  'inventory.reserve': fc.record({ orderId: uuid, items: fuzzLines }),
  'inventory.release': fc.record({ orderId: uuid }),
  'payment.charge': fc.record({ orderId: uuid, customerId: name, amount: minorUnits, currency, paymentMethod: fc.oneof(fc.constantFrom('tok_visa', 'tok_chargeDeclined'), name) }),
  'payment.refund': fc.record({ orderId: uuid }),
  'notification.send': fc.record(
    { orderId: uuid, customerId: name, kind: fc.constantFrom('confirmation', 'cancellation'), reason: fc.string({ maxLength: 40 }) },
    { requiredKeys: ['orderId', 'customerId', 'kind'] },
  ),
  'inventory.catalog': fc.constant({}),
  'inventory.item': fc.record({ sku: fc.oneof(fc.constantFrom(...REAL_SKUS, 'SKU-LIMITED'), sku) }),
  'payment.for-order': fc.record({ orderId: uuid }),
  'notification.for-order': fc.record({ orderId: uuid }),
  'order.create.succeeded': fc.record({ status: orderStatus }),
  'order.confirm.succeeded': fc.record({ status: orderStatus }),
  'order.cancel.succeeded': fc.record({ status: fc.option(orderStatus, { nil: null }) }),
  'inventory.reserve.succeeded': fc.record({
    lines: fc.array(fc.record({ sku: fuzzSku, quantity: fc.integer({ min: 1, max: 1000 }), unitPrice: minorUnits }), { maxLength: 3 }),
    total: minorUnits,
    currency,
  }),
  'inventory.release.succeeded': fc.record({ released: fc.nat() }),
  'payment.charge.succeeded': fc.record({ chargeId: uuid }),
  'payment.refund.succeeded': fc.record({ refundId: fc.option(uuid, { nil: null }) }),
  'notification.send.succeeded': fc.record({ notificationId: uuid }),
};
const failureReply = fc.record({ code: printableAscii(1, 30), reason: fc.string({ maxLength: 60 }) });
const payloadFor = (type: unknown): fc.Arbitrary<unknown> =>
  typeof type === 'string' ? (PAYLOADS[type] ?? (type.endsWith('.failed') ? failureReply : smallJson)) : smallJson;

type PayloadMutation = { op: 'drop' | 'set' | 'line'; index: number; key: string; value: unknown };
const payloadMutation = fc.record({
  op: fc.constantFrom('drop' as const, 'set' as const, 'set' as const, 'line' as const),
  index: fc.nat(),
  key: fc.oneof(fc.constantFrom('discount', '__proto__', 'constructor', 'sku', 'quantity'), fc.string({ maxLength: 8 })),
  value: fc.oneof(smallJson, edgeNumber, hostileText),
});
/** Drops or replaces one of the payload's keys, adds one, or spoils its first line. */
function mutatePayload(payload: unknown, mutations: PayloadMutation[]): unknown {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return payload;
  const copy: Record<string, unknown> = { ...payload };
  for (const { op, index, key, value } of mutations) {
    const keys = Object.keys(copy);
    const existing = keys.length ? keys[index % keys.length] : key;
    if (op === 'drop') delete copy[existing];
    else if (op === 'line' && Array.isArray(copy.items) && copy.items.length > 0) {
      // Never a real SKU: the shelves other suites count on stay as they are.
      copy.items = [{ ...copy.items[0], [key]: key === 'sku' && PROTECTED_SKUS.has(value) ? 'FUZZ' : value }, ...copy.items.slice(1)];
    } else Object.defineProperty(copy, index % 2 ? existing : key, { value, enumerable: true, writable: true, configurable: true });
  }
  return copy;
}
const bodyFor = (type: unknown) =>
  fc.oneof(
    w(
      14,
      fc
        .tuple(payloadFor(type), fc.oneof(w(4, fc.constant<PayloadMutation[]>([])), w(2, fc.array(payloadMutation, { minLength: 1, maxLength: 2 }))))
        .map(([payload, mutations]) => utf8(JSON.stringify(mutatePayload(payload, mutations)) ?? 'null')),
    ),
    w(2, fc.json({ maxDepth: 3 }).map(utf8)),
    w(1, fc.string({ unit: 'binary', maxLength: 100 }).map(utf8)),
    w(1, fc.uint8Array({ maxLength: 100 }).map((bytes) => Buffer.from(bytes))),
    w(1, fc.constantFrom('', '{', 'null', '[]', '\ufeff{}', '{"a":1,}', 'NaN', '{"orderId":"x"}{}').map(utf8)),
    w(1, fc.integer({ min: 1_000, max: 120_000 }).map((depth) => utf8(`${'['.repeat(depth)}${']'.repeat(depth)}`))),
    // Around MAX_MESSAGE_BYTES: a JSON string of exactly `size` bytes.
    w(1, fc.integer({ min: MAX_MESSAGE_BYTES - 2, max: MAX_MESSAGE_BYTES + 4096 }).map((size) => utf8(`"${'x'.repeat(size - 2)}"`))),
  );

// Properties and headers. Every value is one AMQP can carry and RabbitMQ accepts (no NaN, no 64-bit overflow).
const junkId = fc.oneof(
  fc.string({ maxLength: 40 }),
  uuid.map((id) => id.toUpperCase()),
  uuid.map((id) => `{${id}}`),
  uuid.map((id) => id.slice(1)),
  uuid.map((id) => `${id} `),
  uuid.map((id) => id.replaceAll('-', '')),
  fc.constantFrom('00000000-0000-0000-0000-000000000000', 'not-a-uuid'),
);
const safeDouble = fc.double({ min: -1e9, max: 1e9, noNaN: true });
const bytes = fc.uint8Array({ maxLength: 8 }).map((value) => Buffer.from(value));
const oddValue = fc.oneof(
  fc.integer({ min: -100, max: 20_000 }),
  safeDouble,
  fc.constantFrom<unknown>('1', 'abc', '', true, false, -1, 0, 1.5, 10_001, 2 ** 40, 2 ** 62),
  fc.constant([1]),
  fc.constant({ n: 1 }),
  bytes,
);
const headerName = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).filter((value) => !RESERVED_HEADERS.has(value));
const headerLeaf = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.integer(), safeDouble, fc.boolean(), fc.constant(null), bytes);
const { anyHeader } = fc.letrec<{ anyHeader: unknown }>((tie) => ({
  anyHeader: fc.oneof({ depthSize: 'small' }, headerLeaf, fc.array(tie('anyHeader'), { maxLength: 3 }), fc.dictionary(headerName, tie('anyHeader'), { maxKeys: 3 })),
}));
/**
 * A field table with a key "!" (any AMQP client may send one), and headers just under amqplib's 64 KiB table
 * buffer: a consumer must still dead-letter such a message with its reason when it cannot copy the headers.
 */
const unencodableAgain = fc.oneof(
  fc
    .record({ type: fc.constantFrom('bogus', 'decimal', 'int', 'long', 'timestamp'), value: fc.oneof(fc.string({ maxLength: 5 }), fc.integer()) })
    .map(({ type, value }) => ({ 'x-fuzz-table': { '!': 'object', value: { '!': type, value } } })),
  fc.integer({ min: 63_500, max: 65_400 }).map((size) => ({ 'x-fuzz-pad': 'p'.repeat(size) })),
);
/** Fault plans a participant honours here (FAULT_INJECTION is on) that crash nothing, and some it cannot read. */
const FAULT_PLANS = [JSON.stringify({ fail: true }), JSON.stringify({ delay: 5 }), JSON.stringify({ error: 1 }), JSON.stringify({ 'crash-before-commit': 'yes' }), '{"error":', 'crash'];
const RETRY_POLICIES = [JSON.stringify({ attempts: 2, initialDelayMs: 10, multiplier: 1, maxDelayMs: 10, jitter: 0 }), '{"attempts":', 'x'];
const upTo = (arbitrary: fc.Arbitrary<unknown>) => fc.oneof(w(4, fc.constant(undefined)), w(1, arbitrary));

/** A well-formed message for the target: its type (mostly one the queue handles), ids, headers and payload. */
const wellFormed = (target: Target): fc.Arbitrary<Draft> =>
  fc.oneof(w(9, fc.constantFrom(...target.handled)), w(1, fc.constantFrom(...ALL_TYPES))).chain((type) =>
    fc.record({
      properties: fc.record({
        messageId: fc.oneof(w(9, freshId), w(1, uuid)),
        type: fc.constant<unknown>(type),
        correlationId: fc.oneof(w(3, uuid), w(1, printableAscii(1, 128))),
        contentType: fc.constant<unknown>('application/json'),
        replyTo: target.kind === 'query' ? fc.constant<unknown>(ANSWERS) : upTo(printableAscii(1, 20)),
        appId: upTo(fc.string({ maxLength: 20 })),
        timestamp: upTo(fc.integer({ min: 0, max: 2 ** 32 })),
      }),
      headers: fc
        .record({
          [HEADERS.sagaId]: freshId,
          [HEADERS.causationId]: upTo(fc.oneof(fc.constant(''), uuid)),
          [HEADERS.schemaVersion]: upTo(fc.constant(1)),
          [HEADERS.attempt]: upTo(fc.integer({ min: 1, max: 5 })),
          [HEADERS.attempts]: upTo(fc.integer({ min: 1, max: 5 })),
          [HEADERS.retryBase]: upTo(fc.integer({ min: 0, max: 3 })),
          [HEADERS.resend]: upTo(fc.integer({ min: 0, max: 2 })),
          [HEADERS.faultPlan]: fc.oneof(w(10, fc.constant(undefined)), w(1, fc.constantFrom(...FAULT_PLANS))),
          [HEADERS.retryPolicy]: fc.oneof(w(10, fc.constant(undefined)), w(1, fc.constantFrom(...RETRY_POLICIES))),
          [HEADERS.failures]: fc.oneof(w(10, fc.constant(undefined)), w(1, fc.constantFrom('[{"at":"x","error":"y"}]', 'not a list'))),
          extra: fc.oneof(w(3, fc.constant({})), w(1, fc.dictionary(headerName, anyHeader, { maxKeys: 3 }))),
        })
        .map(({ extra, ...headers }) => ({ ...(extra as Record<string, unknown>), ...headers })),
      body: bodyFor(type),
    }),
  );

/** One thing wrong with a message's envelope: a property or a header set to a value a producer could send. */
type EnvelopeSpoiler = { in: 'properties' | 'headers'; name: string; value: unknown } | { in: 'merge'; name: string; value: Record<string, unknown> };
const counterJunk = fc.oneof(oddValue, fc.constant(null), fc.integer({ min: -5, max: 20_000 }));
const envelopeSpoiler = (forPart: boolean): fc.Arbitrary<EnvelopeSpoiler> => {
  const property = (name: string, value: fc.Arbitrary<unknown>) => fc.record({ in: fc.constant('properties' as const), name: fc.constant(name), value });
  const header = (name: string, value: fc.Arbitrary<unknown>) => fc.record({ in: fc.constant('headers' as const), name: fc.constant(name), value });
  const spoilers: fc.Arbitrary<EnvelopeSpoiler>[] = [
    property('messageId', fc.oneof(fc.constantFrom(undefined, ''), junkId)),
    property(
      'type',
      fc
        .oneof(
          fc.constantFrom(...ALL_TYPES),
          fc.constantFrom(undefined, '', 'inventory.teleport', 'Inventory.Reserve', 'inventory.reserve ', 'inventory', 'a.b.c.d.e', 'inventory.reserve.succeeded.twice'),
          fc.string({ maxLength: 30 }),
        )
        .filter((type) => type !== BUNDLE_TYPE),
    ),
    property('correlationId', fc.oneof(fc.constantFrom(undefined, ''), printableAscii(129, 200), fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }))),
    property('contentType', fc.oneof(fc.constantFrom(undefined, '', 'text/plain', 'application/json; charset=utf-8', 'Application/JSON', 'application/octet-stream', ' application/json'), fc.string({ maxLength: 30 }))),
    property('replyTo', fc.constantFrom(undefined, '')),
    header(HEADERS.sagaId, fc.oneof(fc.constant(undefined), junkId, oddValue)),
    header(HEADERS.causationId, fc.oneof(junkId, oddValue, fc.constant(null))),
    ...[HEADERS.schemaVersion, HEADERS.attempt, HEADERS.attempts, HEADERS.retryBase, HEADERS.resend].map((name) => header(name, counterJunk)),
    header(HEADERS.faultPlan, oddValue),
    header(HEADERS.retryPolicy, oddValue),
    header(HEADERS.failures, oddValue),
  ];
  spoilers.push(unencodableAgain.map((value) => ({ in: 'merge' as const, name: 'headers', value })));
  // A bundle part travels as JSON: its properties may be of any type and length, which no AMQP message could carry.
  if (forPart) {
    const odd = fc.oneof(fc.integer(), fc.constant({ a: 1 }), fc.constant([]), printableAscii(256, 300), fc.constant(-5));
    spoilers.push(fc.constantFrom('messageId', 'type', 'correlationId', 'contentType', 'appId', 'timestamp').chain((name) => property(name, odd)));
  }
  return fc.oneof(...spoilers);
};
function spoilEnvelope(draft: Draft, spoilers: EnvelopeSpoiler[]): Draft {
  const properties = { ...draft.properties } as Record<string, unknown>;
  let headers = { ...draft.headers };
  for (const spoiler of spoilers) {
    if (spoiler.in === 'merge') headers = { ...headers, ...spoiler.value };
    else if (spoiler.in === 'properties') properties[spoiler.name] = spoiler.value;
    else headers[spoiler.name] = spoiler.value;
  }
  const defined = (record: Record<string, unknown>) => Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
  return { properties: defined(properties), headers: defined(headers), body: draft.body };
}
/** A message for the target: well-formed, then spoiled in none, one or a few places. */
const draftFor = (target: Target, forPart: boolean): fc.Arbitrary<Draft> =>
  fc
    .tuple(
      wellFormed(target),
      fc.oneof(w(4, fc.constant<EnvelopeSpoiler[]>([])), w(5, fc.array(envelopeSpoiler(forPart), { minLength: 1, maxLength: 1 })), w(2, fc.array(envelopeSpoiler(forPart), { minLength: 2, maxLength: 3 }))),
    )
    .map(([draft, spoilers]) => spoilEnvelope(draft, spoilers));

/** A case: one message for one work queue, sent straight to it or through its exchange; maybe a bundle of parts. */
interface AmqpCase {
  target: Target;
  routingKey: string | null;
  message: Draft;
  /** A bundle's parts as generated (the message's body is made of them), or undefined. */
  parts?: Draft[];
}
const describeDraft = ({ properties, headers, body }: Draft) =>
  `${JSON.stringify(properties)} headers ${clip(JSON.stringify(headers), 400)} body (${body.length} bytes) ${clip(JSON.stringify(body.toString('utf8')), 200)}`;
const describeCase = ({ target, routingKey, message, parts }: AmqpCase) =>
  `to ${target.queue}${routingKey === null ? '' : ` through ${target.exchange} as ${JSON.stringify(routingKey)}`}: ${describeDraft(message)}${parts ? parts.map((part, i) => `\n  part ${i}: ${describeDraft(part)}`).join('') : ''}`;
const BROKEN_BUNDLES = ['', '{}', '[]', 'null', '[1]', '[{}]', '[{"properties":null,"body":"{}"}]', '[{"properties":{},"body":5}]', '[{"body":"{}"}]', '[{"properties":{}}]'];
const amqpCase = fc
  .constantFrom(...TARGETS)
  .chain((target) =>
    fc.record({
      target: fc.constant(target),
      routingKey: fc.oneof(
        w(2, fc.constant(null)),
        w(1, target.prefix === null ? fc.string({ maxLength: 30 }) : fc.stringMatching(/^[a-z][a-z-]{0,15}$/).map((word) => `${target.prefix}.${word}`)),
      ),
      shape: fc.oneof(
        w(10, draftFor(target, false).map((message) => ({ message, parts: undefined as Draft[] | undefined }))),
        w(
          2,
          fc
            .record({
              parts: fc.oneof(w(5, fc.array(draftFor(target, true), { minLength: 1, maxLength: 4 })), w(1, fc.constant(undefined))),
              broken: fc.constantFrom(...BROKEN_BUNDLES),
              messageId: fc.oneof(w(4, uuid), w(1, junkId)),
              contentType: fc.constantFrom('application/json', 'text/plain'),
            })
            .map(({ parts, broken, messageId, contentType }) => ({
              message: { properties: { messageId, type: BUNDLE_TYPE, contentType }, headers: {}, body: utf8(broken) } as Draft,
              parts,
            })),
        ),
      ),
    }),
  )
  .map(({ target, routingKey, shape }) => described<AmqpCase>({ target, routingKey, ...shape }, describeCase));

// ---- What a consumer must do with a message (the oracle) ---------------------------------------------------

/** How a message may end: handled ('processed'), or in its queue's .dlq with one of these reasons. */
type Outcome = 'processed' | 'malformed' | 'unknown-type' | 'invalid-payload' | 'permanent-error';
interface Expectation {
  allowed: Set<Outcome>;
  /** Why (for the failure message). */
  because: string;
  /** For a query handled: whether its answer must be ok (the payload meets the contract) or not. */
  answerOk?: boolean;
}

const STRICT_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const COUNTERS: [string, number, number][] = [
  [HEADERS.schemaVersion, 1, 1],
  [HEADERS.attempt, 1, 10_000],
  [HEADERS.attempts, 1, 10_000],
  [HEADERS.retryBase, 0, 10_000],
  [HEADERS.resend, 0, 1_000],
];
const NOT_JSON = Symbol('not JSON');
const readJson = (body: Buffer): unknown => {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return NOT_JSON;
  }
};

/**
 * What the README promises for one message on one queue: an envelope that breaks a rule is `malformed`, a type
 * the queue does not handle `unknown-type`, a payload that breaks its contract `invalid-payload`; a reply for
 * no saga `permanent-error`; a good command or query is handled. A UUID that is well-shaped but of an odd
 * version may go either way (`maybe`).
 */
function expectationFor(target: Target, { properties, headers, body }: Draft): Expectation {
  const only = (outcome: Outcome, because: string, answerOk?: boolean): Expectation => ({ allowed: new Set([outcome]), because, answerOk });
  if (body.length > MAX_MESSAGE_BYTES) return only('malformed', 'body over MAX_MESSAGE_BYTES');
  const payload = readJson(body);
  if (target.kind === 'query') {
    const contract = typeof properties.type === 'string' && target.handled.includes(properties.type) ? QUERIES.get(properties.type) : undefined;
    if (!contract) return only('unknown-type', `not a query of ${target.queue}`);
    const broken = [properties.contentType !== 'application/json' && 'content type', !properties.replyTo && 'no reply-to', payload === NOT_JSON && 'body not JSON'].filter(Boolean);
    // Asked as a QueryClient asks: its message and correlation ids are UUIDs.
    let odd = false;
    for (const [value, what] of [[properties.messageId, 'message id'], [properties.correlationId, 'correlation id']] as const) {
      if (typeof value !== 'string' || !UUID_SHAPE.test(value)) broken.push(`${what} not a UUID`);
      else if (!STRICT_UUID.test(value)) odd = true;
    }
    if (broken.length) return only('malformed', broken.join(', '));
    const ok = contract.payload.safeParse(payload).success;
    const expected = only('processed', `a query (${ok ? 'valid' : 'invalid'} payload)`, ok);
    if (odd) expected.allowed.add('malformed');
    return expected;
  }
  const broken: string[] = [];
  let maybe = false;
  const id = (value: unknown, what: string) => {
    if (typeof value !== 'string' || !UUID_SHAPE.test(value)) broken.push(`${what} not a UUID`);
    else if (!STRICT_UUID.test(value)) maybe = true;
  };
  if (properties.contentType !== 'application/json') broken.push('content type');
  for (const [header, min, max] of COUNTERS) {
    const value = headers[header];
    if (value !== undefined && value !== null && !(typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max)) broken.push(`${header} out of range`);
  }
  const counter = (name: string, fallback: number) => (typeof headers[name] === 'number' ? (headers[name] as number) : fallback);
  if (counter(HEADERS.retryBase, 0) >= counter(HEADERS.attempt, 1)) broken.push('x-retry-base not below x-attempt');
  const causation = headers[HEADERS.causationId] ?? '';
  if (causation !== '') id(causation, HEADERS.causationId);
  id(properties.messageId, 'message id');
  id(headers[HEADERS.sagaId], HEADERS.sagaId);
  if (typeof properties.type !== 'string' || properties.type === '') broken.push('no type');
  if (typeof properties.correlationId !== 'string' || !/^[\x20-\x7e]{1,128}$/.test(properties.correlationId)) broken.push('correlation id');
  if (payload === NOT_JSON) broken.push('body not JSON');
  if (broken.length) return only('malformed', broken.join(', '));
  const type = properties.type as string;
  let expected: Expectation;
  if (!target.handled.includes(type)) {
    // A well-shaped type that this queue does not handle, or one of no shape at all.
    expected = { allowed: new Set(['unknown-type', 'malformed']), because: `type ${type} not handled on ${target.queue}` };
  } else {
    const schema = target.kind === 'command' ? COMMANDS.get(type)!.payload : type.endsWith('.succeeded') ? COMMANDS.get(type.slice(0, -'.succeeded'.length))!.result : FailureReply;
    const valid = schema.safeParse(payload).success;
    expected = valid ? only(target.kind === 'command' ? 'processed' : 'permanent-error', target.kind === 'command' ? 'a valid command' : 'a valid reply for no saga') : only('invalid-payload', 'payload breaks its contract');
  }
  if (maybe) expected.allowed.add('malformed');
  return expected;
}

/** One message the suite waits for: a plain message, a bundle part, or a bundle refused whole. */
interface Unit {
  id: string;
  target: Target;
  /** The message as its consumer sees it. */
  seen: Draft;
  expectation: Expectation;
}

/** The units of a case once published: a bundle that cannot be read is one unit, else one per part. */
function unitsOf(caseId: string, { target, message, parts }: AmqpCase, body: Buffer): Unit[] {
  const whole = (expectation: Expectation): Unit[] => [{ id: caseId, target, seen: { ...message, body }, expectation }];
  if (message.properties.type !== BUNDLE_TYPE) return whole(expectationFor(target, { ...message, body }));
  if (body.length > MAX_MESSAGE_BYTES) return whole({ allowed: new Set(['malformed']), because: 'bundle over MAX_MESSAGE_BYTES' });
  const list = readJson(body);
  const readable = Array.isArray(list) && list.length > 0 && list.every((part) => typeof part?.body === 'string' && typeof part?.properties === 'object' && part.properties !== null);
  if (!readable) return whole({ allowed: new Set(['malformed']), because: 'bundle that cannot be read' });
  return (list as { properties: Draft['properties'] & { headers?: Record<string, unknown> }; body: string }[]).map(({ properties, body: text }, index) => {
    const seen: Draft = { properties, headers: properties.headers ?? {}, body: utf8(text) };
    return { id: `${caseId}/${index}`, target, seen, expectation: expectationFor(target, seen) };
  });
}

interface Observed {
  queue: string;
  message: ConsumeMessage;
}
const headerOf = (observed: Observed, name: string) => observed.message.properties.headers?.[name];

/**
 * Where the evidence that a unit was handled shows up, as a key: the reply its command caused (in the replies'
 * .dlq, as no saga has that id) or the answer to its query. Units with equal keys (two queries with one
 * correlation id) are told apart by what their answers say.
 */
function evidenceKey(unit: Unit): string | undefined {
  const { properties } = unit.seen;
  if (!unit.expectation.allowed.has('processed')) return undefined;
  if (unit.target.kind === 'command') return typeof properties.messageId === 'string' ? `${QUEUES.deadLettersOf(QUEUES.replies)} caused by ${wire(properties.messageId)}` : undefined;
  return `${ANSWERS} ${typeof properties.correlationId === 'string' ? wire(properties.correlationId) : String(properties.correlationId)}-response`;
}
function keyOf(observed: Observed): string | undefined {
  if (headerOf(observed, CASE_HEADER) !== undefined) return undefined;
  const causation = headerOf(observed, HEADERS.causationId);
  if (observed.queue === QUEUES.deadLettersOf(QUEUES.replies) && typeof causation === 'string' && causation) return `${observed.queue} caused by ${causation}`;
  return `${observed.queue} ${String(observed.message.properties.messageId)}`;
}
const answerOf = (observed: Observed) => (readJson(observed.message.content) as { ok?: unknown } | undefined)?.ok;

/**
 * Judges the units by what the suite's consumers saw, once each has ended: every unit ends once, in its own
 * .dlq with a reason it may have, or handled. Returns whether all have ended, and the problems found then.
 */
function judge(units: Unit[], seen: Observed[]): { done: boolean; problems: string[] } {
  const letters = new Map(units.map((unit) => [unit, seen.filter((observed) => headerOf(observed, CASE_HEADER) === unit.id)]));
  const evidence = new Map<string, Observed[]>();
  for (const observed of seen) {
    const key = keyOf(observed);
    if (key !== undefined) evidence.set(key, [...(evidence.get(key) ?? []), observed]);
  }
  // Evidence goes first to the units whose answer it matches, then to the others.
  const handled = new Map<Unit, Observed>();
  const waiting = units.filter((unit) => letters.get(unit)!.length === 0);
  for (const strict of [true, false]) {
    for (const unit of waiting) {
      const key = evidenceKey(unit);
      if (handled.has(unit) || key === undefined) continue;
      const candidates = evidence.get(key) ?? [];
      const index = candidates.findIndex((observed) => !strict || unit.expectation.answerOk === undefined || answerOf(observed) === unit.expectation.answerOk);
      if (index >= 0) handled.set(unit, candidates.splice(index, 1)[0]);
    }
  }
  if (waiting.some((unit) => !handled.has(unit))) return { done: false, problems: [] };

  const problems: string[] = [];
  for (const unit of units) {
    const { expectation, target, seen: sent } = unit;
    const about = `${unit.id} (${expectation.because}; may end ${[...expectation.allowed].join(' or ')})`;
    const [letter, ...more] = letters.get(unit)!;
    if (more.length) problems.push(`${about}: dead-lettered ${more.length + 1} times`);
    if (letter) {
      const headers = letter.message.properties.headers ?? {};
      const reason = headers[HEADERS.deadLetterReason];
      const key = evidenceKey(unit);
      if (target.kind === 'command' && key !== undefined && evidence.get(key)?.length) problems.push(`${about}: both handled and dead-lettered`);
      if (letter.queue !== QUEUES.deadLettersOf(target.queue)) problems.push(`${about}: dead-lettered into ${letter.queue}`);
      if (typeof reason !== 'string' || !reason) {
        problems.push(`${about}: in ${letter.queue} without ${HEADERS.deadLetterReason} (x-first-death-reason ${String(headers['x-first-death-reason'])}): its consumer could not dead-letter it itself`);
      } else if (!expectation.allowed.has(reason as Outcome)) problems.push(`${about}: dead-lettered as ${reason}: ${String(headers[HEADERS.deadLetterError])}`);
      else {
        if (!String(headers[HEADERS.deadLetterError] ?? '')) problems.push(`${about}: dead-lettered without ${HEADERS.deadLetterError}`);
        if (headers[HEADERS.originalQueue] !== target.queue) problems.push(`${about}: ${HEADERS.originalQueue} is ${String(headers[HEADERS.originalQueue])}`);
        // Refused at once: never parked for a retry first.
        if (headers[HEADERS.lastFailureAt] !== undefined) problems.push(`${about}: retried before it was dead-lettered`);
        if (!letter.message.content.equals(sent.body)) problems.push(`${about}: its body was not kept whole`);
      }
      continue;
    }
    const answer = handled.get(unit)!;
    // The service's reply: to this command, or to an earlier one with the same message id (its inbox answers that).
    if (target.kind === 'command' && !REPLY_TYPES.includes(String(answer.message.properties.type))) problems.push(`${about}: answered with a ${String(answer.message.properties.type)}`);
    if (expectation.answerOk !== undefined && answerOf(answer) !== expectation.answerOk) problems.push(`${about}: answered ${clip(answer.message.content.toString('utf8'), 200)}`);
  }
  const ids = new Set(units.map((unit) => unit.id));
  for (const observed of seen) {
    const id = headerOf(observed, CASE_HEADER);
    if (id !== undefined && !ids.has(String(id))) problems.push(`unexpected: ${String(id)} in ${observed.queue}`);
  }
  return { done: true, problems };
}

// ---- The suite's broker side -----------------------------------------------------------------------------

let connection: ChannelModel;
let publisher: ConfirmChannel;
let observer: Channel;
/** Messages taken off every .dlq and the answers queue, not yet looked at. */
const inbox: Observed[] = [];
/** Messages of a case that showed up after it had ended. */
const late: string[] = [];
let caseCount = 0;
/** Set once a case ran out of time: its message may still be going round. */
let disturbed: string | undefined;

/** Publishes the case; false if amqplib refuses to encode it (then it is no case: the broker never sees it). */
async function publish(caseId: string, { target, routingKey, message, parts }: AmqpCase): Promise<Buffer | false> {
  let body = message.body;
  if (message.properties.type === BUNDLE_TYPE && parts) {
    body = utf8(JSON.stringify(parts.map((part, index) => ({ properties: { ...part.properties, headers: { ...part.headers, [CASE_HEADER]: `${caseId}/${index}` } }, body: part.body.toString('utf8') }))));
  }
  const options = Object.fromEntries(Object.entries({ ...message.properties, headers: { ...message.headers, [CASE_HEADER]: caseId } }).filter(([, value]) => value !== undefined)) as Options.Publish;
  try {
    if (routingKey === null) publisher.sendToQueue(target.queue, body, options);
    else publisher.publish(target.exchange, routingKey, body, options);
  } catch {
    return false;
  }
  await publisher.waitForConfirms();
  return body;
}

/** Takes what the consumers saw; what belongs to an earlier case came after that case had ended. */
function takeInbox(caseId: string | undefined): Observed[] {
  return inbox.splice(0).filter((observed) => {
    const id = headerOf(observed, CASE_HEADER);
    const earlier = id !== undefined && id !== caseId && !String(id).startsWith(`${caseId}/`);
    if (earlier) late.push(`${String(id)} in ${observed.queue}`);
    return !earlier;
  });
}

async function runCase(generated: AmqpCase): Promise<void> {
  // A message still going round (a case ran out of time) would spoil every verdict after it: let fast-check
  // report that case as it is rather than shrink it against a disturbed system.
  if (disturbed) return;
  const caseId = `${run}-${++caseCount}`;
  takeInbox(caseId);
  const body = await publish(caseId, generated);
  fc.pre(body !== false);
  const units = unitsOf(caseId, generated, body as Buffer);
  const seen: Observed[] = [];
  const deadline = Date.now() + 15_000;
  for (;;) {
    seen.push(...takeInbox(caseId));
    const { done, problems } = judge(units, seen);
    if (problems.length) throw new Error(problems.join('\n'));
    if (done) {
      for (const unit of units) {
        const [letter] = seen.filter((observed) => headerOf(observed, CASE_HEADER) === unit.id);
        count('AMQP', `${unit.target.queue}${unit.id.includes('/') ? ' (bundled)' : ''} ${letter ? String(letter.message.properties.headers?.[HEADERS.deadLetterReason]) : 'handled'}`);
      }
      return;
    }
    if (Date.now() > deadline) {
      const ended = new Set(seen.map((observed) => String(headerOf(observed, CASE_HEADER))));
      const open = units.filter((unit) => !ended.has(unit.id)).map((unit) => `${unit.id} (${unit.expectation.because}; may end ${[...unit.expectation.allowed].join(' or ')})`);
      disturbed = `not dead-lettered nor handled within 15 s (left in a work or retry queue, or lost): ${open.join(', ')}`;
      throw new Error(disturbed);
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

describe('AMQP edge', () => {
  beforeAll(async () => {
    connection = await amqplib.connect(amqpUrl);
    publisher = await connection.createConfirmChannel();
    observer = await connection.createChannel();
    await observer.assertQueue(ANSWERS, { exclusive: true, autoDelete: true });
    if (ANSWERS_EXCHANGE) await observer.bindQueue(ANSWERS, ANSWERS_EXCHANGE, ANSWERS);
    // Takes every dead letter, the suite's and any earlier suite left (takeDeadLetter drops those too).
    for (const queue of [...DEAD_LETTER_QUEUES, ANSWERS]) {
      await observer.consume(queue, (message) => message && inbox.push({ queue, message }), { noAck: true });
    }
  });
  afterAll(async () => {
    await connection?.close();
  });

  test(`generated messages for every work queue (${RUNS.amqp} cases): each dead-lettered at once with its reason, or handled`, async () => {
    await fc.assert(fc.asyncProperty(amqpCase, runCase), { seed: SEED, numRuns: RUNS.amqp });
    printTally('AMQP');
  }, 900_000);

  test('nothing is left in a work or retry queue, nothing came late, and every consumer is still there', async () => {
    const admin = new BrokerAdmin();
    // The management API refreshes its figures every few seconds.
    await eventually(
      async () => {
        const queues = new Map((await admin.queues(vhost)).map((queue) => [queue.name, queue]));
        const busy = [...WORK_QUEUES, ...RETRY_QUEUES].filter((queue) => (queues.get(queue)?.messages ?? 0) > 0);
        const unconsumed = WORK_QUEUES.filter((queue) => (queues.get(queue)?.consumers ?? 0) < 1);
        if (busy.length || unconsumed.length) throw new Error(`messages in ${busy.join(', ') || 'none'}; no consumer on ${unconsumed.join(', ') || 'none'}`);
        return true;
      },
      { what: 'every work and retry queue empty, with its consumers', timeoutMs: 30_000, intervalMs: 250 },
    );
    for (const queue of WORK_QUEUES) expect({ queue, consumers: (await publisher.checkQueue(queue)).consumerCount >= 1 }).toEqual({ queue, consumers: true });
    takeInbox(undefined);
    expect({ late: late.length, first: late.slice(0, 5) }).toEqual({ late: 0, first: [] });
  }, 60_000);
});

describe('afterwards', () => {
  test('a normal order still confirms, and no process logged a 5xx or an unhandled error', async () => {
    const orderId = await api.submit({ customerId: `fuzz-${run}-after`, items: [{ sku: 'SKU-MUG', quantity: 1 }], paymentMethod: 'tok_visa' });
    expect((await api.awaitFinal(orderId)).status).toBe('CONFIRMED');
    expect(serverErrorsIn(process.env.SAGAFLOW_LOG_DIR!)).toEqual([]);
  });
});
