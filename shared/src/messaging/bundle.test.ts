// A bundle must hand each part back exactly as it would have arrived alone, or a part could be decoded
// differently, deduped wrongly or dead-lettered without its own identity.
import type { ConsumeMessage } from 'amqplib';
import { newMessageId, SCHEMA_VERSION, type Envelope } from '../contracts/envelope.js';
import { BUNDLE_TYPE, bundle, isBundle, unbundle } from './bundle.js';
import { decode, encode, MalformedMessageError } from './codec.js';

const command = (sku: string): Envelope => ({
  messageId: newMessageId(),
  type: 'inventory.reserve',
  sagaId: newMessageId(),
  correlationId: newMessageId(),
  causationId: newMessageId(),
  schemaVersion: SCHEMA_VERSION,
  payload: { orderId: newMessageId(), items: [{ sku, quantity: 2 }], note: 'ünïcødé "quoted"' },
  headers: { 'x-attempt': 1, 'x-resend': 0, 'x-retry-policy': '{"attempts":5}' },
});

/** As the consumer receives what was published. */
const delivered = ({ content, options }: ReturnType<typeof bundle>, redelivered = false): ConsumeMessage => ({
  content,
  fields: { deliveryTag: 7, redelivered, consumerTag: 'c', exchange: 'sagaflow.commands', routingKey: 'inventory.reserve' },
  properties: { ...options, headers: options.headers } as any,
});

test('each part comes back with its own properties and body, and the bundle delivery fields', () => {
  const envelopes = [command('A'), command('B'), command('C')];
  const message = delivered(bundle(envelopes.map((envelope) => encode(envelope, 'orchestrator')), 'orchestrator'), true);
  expect(isBundle(message)).toBe(true);
  expect(message.properties.type).toBe(BUNDLE_TYPE);
  expect(message.properties.headers?.['x-bundle-size']).toBe(3);

  const parts = unbundle(message);
  expect(parts.map((part) => decode(part))).toEqual(envelopes);
  for (const part of parts) {
    expect(part.fields).toMatchObject({ deliveryTag: 7, redelivered: true });
    expect(part.properties).toMatchObject({ appId: 'orchestrator', contentType: 'application/json' });
  }
});

test('a plain message is not a bundle', () => {
  const { content, options } = encode(command('A'), 'orchestrator');
  expect(isBundle(delivered({ content, options }))).toBe(false);
});

test.each([
  ['not JSON', 'nope', /not valid JSON/],
  ['not a list', '{"a":1}', /non-empty list/],
  ['an empty list', '[]', /non-empty list/],
  ['a part without a body', '[{"properties":{}}]', /part 0 has no properties or body/],
  ['a part without properties', '[{"body":"{}"}]', /part 0 has no properties or body/],
])('a bundle whose body is %s is malformed', (_, body, reason) => {
  const message = delivered(bundle([encode(command('A'), 'x')], 'x'));
  message.content = Buffer.from(body);
  expect(() => unbundle(message)).toThrow(MalformedMessageError);
  expect(() => unbundle(message)).toThrow(reason);
});
