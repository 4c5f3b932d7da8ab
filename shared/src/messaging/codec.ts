import type { ConsumeMessage, Options } from 'amqplib';
import { HEADERS, SCHEMA_VERSION, type Envelope } from '../contracts/envelope.js';

/** A message that cannot be read as a Sagaflow envelope; it is dead-lettered, never retried. */
export class MalformedMessageError extends Error {
  readonly reason = 'malformed';
}

/** A message as published: its body and its AMQP properties. */
export interface OutgoingMessage {
  content: Buffer;
  options: Options.Publish;
}

/** Maps an envelope onto AMQP properties (standard ones where AMQP has them) and a JSON body. */
export function encode(envelope: Envelope, appId: string): OutgoingMessage {
  return {
    content: Buffer.from(JSON.stringify(envelope.payload)),
    options: {
      messageId: envelope.messageId,
      type: envelope.type,
      correlationId: envelope.correlationId,
      appId,
      contentType: 'application/json',
      persistent: true,
      timestamp: Math.floor(Date.now() / 1000),
      headers: {
        ...envelope.headers,
        [HEADERS.sagaId]: envelope.sagaId,
        [HEADERS.causationId]: envelope.causationId,
        [HEADERS.schemaVersion]: envelope.schemaVersion,
      },
    },
  };
}

const required = (value: unknown, name: string): string => {
  if (typeof value !== 'string' || value.length === 0) throw new MalformedMessageError(`missing ${name}`);
  return value;
};

/** Reads an envelope back (from a delivery or a basic.get); throws MalformedMessageError naming what is wrong. */
export function decode(message: Pick<ConsumeMessage, 'content' | 'properties'>): Envelope {
  const { properties } = message;
  const headers = properties.headers ?? {};
  const schemaVersion = Number(headers[HEADERS.schemaVersion] ?? SCHEMA_VERSION);
  if (schemaVersion !== SCHEMA_VERSION) throw new MalformedMessageError(`unsupported schema version ${schemaVersion}`);
  let payload: unknown;
  try {
    payload = JSON.parse(message.content.toString('utf8'));
  } catch {
    throw new MalformedMessageError('body is not valid JSON');
  }
  return {
    messageId: required(properties.messageId, 'message id'),
    type: required(properties.type, 'type'),
    sagaId: required(headers[HEADERS.sagaId], `${HEADERS.sagaId} header`),
    correlationId: required(properties.correlationId, 'correlation id'),
    causationId: typeof headers[HEADERS.causationId] === 'string' ? headers[HEADERS.causationId] : '',
    schemaVersion,
    payload,
    headers: extraHeaders(headers),
  };
}

const META_HEADERS = new Set<string>([HEADERS.sagaId, HEADERS.causationId, HEADERS.schemaVersion]);

/** The headers beyond the envelope's own metadata (retry state, fault plan, ...). */
function extraHeaders(headers: Record<string, unknown>): Record<string, string | number> {
  const extra: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!META_HEADERS.has(name) && (typeof value === 'string' || typeof value === 'number')) extra[name] = value;
  }
  return extra;
}
