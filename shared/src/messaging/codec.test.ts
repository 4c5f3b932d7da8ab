// The codec is the contract on the wire: every process encodes and decodes with it, so anything it lets
// through unreadable would be retried forever instead of dead-lettered as malformed.
import type { ConsumeMessage } from 'amqplib';
import { SCHEMA_VERSION, type Envelope } from '../contracts/envelope.js';
import { decode, encode, envelopeProblem, MalformedMessageError } from './codec.js';

const envelope: Envelope = {
  messageId: '0190a7f2-0000-7000-8000-000000000001',
  type: 'inventory.reserve',
  sagaId: '0190a7f2-0000-7000-8000-0000000000aa',
  correlationId: 'order-42',
  causationId: '0190a7f2-0000-7000-8000-000000000000',
  schemaVersion: SCHEMA_VERSION,
  payload: { orderId: 'o-1', items: [{ sku: 'ABC-1', quantity: 2 }], note: 'ünïcødé' },
};

/** What the consumer would receive for what `encode` published (amqplib hands options back as properties). */
function received({ content, options }: ReturnType<typeof encode>): ConsumeMessage {
  return { content, fields: { deliveryTag: 1, redelivered: false } as any, properties: { ...options, headers: options.headers } as any };
}

/** A message built from a valid encoding, with its properties and headers adjusted. */
function tampered(adjust: (message: ConsumeMessage) => void): ConsumeMessage {
  const message = received(encode(envelope, 'test'));
  message.properties = { ...message.properties, headers: { ...message.properties.headers } };
  adjust(message);
  return message;
}

describe('encode', () => {
  const { content, options } = encode(envelope, 'orchestrator');

  test('puts only the payload in a JSON body', () => {
    expect(JSON.parse(content.toString('utf8'))).toEqual(envelope.payload);
  });

  test('uses the standard AMQP properties where there are some', () => {
    expect(options).toMatchObject({
      messageId: envelope.messageId,
      type: 'inventory.reserve',
      correlationId: 'order-42',
      appId: 'orchestrator',
      contentType: 'application/json',
      // Saga commands must survive a broker restart.
      persistent: true,
    });
  });

  test('carries saga id, causation id and schema version in x- headers', () => {
    expect(options.headers).toEqual({
      'x-saga-id': envelope.sagaId,
      'x-causation-id': envelope.causationId,
      'x-schema-version': SCHEMA_VERSION,
    });
  });

  test('stamps a timestamp in whole seconds', () => {
    expect(Number.isInteger(options.timestamp)).toBe(true);
    expect(Math.abs(options.timestamp! - Date.now() / 1000)).toBeLessThan(5);
  });
});

describe('decode', () => {
  test('reads back exactly what encode wrote', () => {
    expect(decode(received(encode(envelope, 'test')))).toEqual({ ...envelope, headers: {} });
  });

  test('keeps an empty causation id (the first command of a saga) as empty', () => {
    const first = { ...envelope, causationId: '' };
    expect(decode(received(encode(first, 'test')))).toEqual({ ...first, headers: {} });
  });

  test('carries further headers (retry state, fault plan) through', () => {
    const retried = { ...envelope, headers: { 'x-attempt': 2, 'x-retry-policy': '{"attempts":3}' } };
    expect(decode(received(encode(retried, 'test')))).toEqual(retried);
  });

  test('reads a missing causation header as empty rather than rejecting', () => {
    const message = tampered((message) => delete message.properties.headers!['x-causation-id']);
    expect(decode(message).causationId).toBe('');
  });

  test('accepts a message without a schema version header as the current version', () => {
    const message = tampered((message) => delete message.properties.headers!['x-schema-version']);
    expect(decode(message).schemaVersion).toBe(SCHEMA_VERSION);
  });

  // Each case breaks one thing; the error must name it (so the dead-letter header tells an operator why).
  test.each<[string, (message: ConsumeMessage) => void, RegExp]>([
    ['a body that is not JSON', (message) => (message.content = Buffer.from('{not json')), /not valid JSON/],
    ['an empty body', (message) => (message.content = Buffer.alloc(0)), /not valid JSON/],
    ['no message id', (message) => (message.properties.messageId = undefined), /missing message id/],
    ['an empty message id', (message) => (message.properties.messageId = ''), /missing message id/],
    ['no type', (message) => (message.properties.type = undefined), /missing type/],
    ['no x-saga-id header', (message) => delete message.properties.headers!['x-saga-id'], /missing x-saga-id header/],
    ['no headers at all', (message) => (message.properties.headers = undefined), /missing x-saga-id header/],
    ['no correlation id', (message) => (message.properties.correlationId = undefined), /missing correlation id/],
    ['an unsupported schema version', (message) => (message.properties.headers!['x-schema-version'] = SCHEMA_VERSION + 1), /unsupported schema version 2/],
    ['a non-numeric schema version', (message) => (message.properties.headers!['x-schema-version'] = 'v1'), /x-schema-version must be an integer/],
    ['a message id that is not a UUID', (message) => (message.properties.messageId = 'm-1'), /message id must be a UUID/],
    ['a saga id that is not a UUID', (message) => (message.properties.headers!['x-saga-id'] = 'saga'), /x-saga-id header must be a UUID/],
    ['a correlation id of 129 characters', (message) => (message.properties.correlationId = 'c'.repeat(129)), /correlation id must be 1 to 128/],
    ['a correlation id with a control character', (message) => (message.properties.correlationId = 'a\u0001'), /correlation id must be/],
    ['x-attempt "abc"', (message) => (message.properties.headers!['x-attempt'] = 'abc'), /x-attempt must be an integer from 1/],
    ['x-attempt 0', (message) => (message.properties.headers!['x-attempt'] = 0), /x-attempt must be an integer/],
    ['x-resend -1', (message) => (message.properties.headers!['x-resend'] = -1), /x-resend must be an integer from 0/],
    ['x-retry-base 3 without x-attempt', (message) => (message.properties.headers!['x-retry-base'] = 3), /x-retry-base must be below x-attempt/],
    ['content type text/plain', (message) => (message.properties.contentType = 'text/plain'), /content type must be application\/json/],
    ['no content type', (message) => (message.properties.contentType = undefined), /content type must be application\/json/],
  ])('rejects %s with MalformedMessageError', (_, adjust, why) => {
    const message = tampered(adjust);
    expect(() => decode(message)).toThrow(MalformedMessageError);
    expect(() => decode(message)).toThrow(why);
  });

  test('MalformedMessageError says its dead-letter reason is malformed', () => {
    const error = new MalformedMessageError('x');
    expect(error).toBeInstanceOf(Error);
    expect(error.reason).toBe('malformed');
  });
});

describe('envelopeProblem (checked before publishing)', () => {
  test('finds nothing wrong with an envelope a consumer would read', () => {
    expect(envelopeProblem(envelope)).toBeNull();
    expect(envelopeProblem({ ...envelope, causationId: '' })).toBeNull();
  });

  test.each<[string, Partial<Envelope>, RegExp]>([
    ['a message id that is not a UUID', { messageId: 'm-1' }, /message id must be a UUID/],
    ['a saga id that is not a UUID', { sagaId: 'saga' }, /saga id must be a UUID/],
    ['a causation id that is not a UUID', { causationId: 'cause' }, /causation id must be a UUID or empty/],
    ['a bad type', { type: 'Reserve!' }, /type must be a message type/],
    ['a correlation id of 300 characters', { correlationId: 'c'.repeat(300) }, /correlation id must be 1 to 128 printable ASCII characters \(it has 300\)/],
    ['an empty correlation id', { correlationId: '' }, /correlation id must be/],
  ])('names %s', (_, change, why) => {
    expect(envelopeProblem({ ...envelope, ...change })).toMatch(why);
  });
});
