import type { ConsumeMessage, Options } from 'amqplib';
import { CorrelationId, isId } from '../contracts/define.js';
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
  const expiresAt = envelope.headers?.[HEADERS.expiresAt];
  return {
    content: Buffer.from(JSON.stringify(envelope.payload)),
    options: {
      // A command the saga stops wanting expires in the queue (the broker dead-letters it as `expired`).
      ...(typeof expiresAt === 'number' ? { expiration: String(Math.max(1, expiresAt - Date.now())) } : {}),
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

/** `<service>.<verb>` for commands and queries, `<service>.<verb>.succeeded|failed` for replies. */
const isMessageType = (value: string) => /^[a-z]+(\.[a-z-]+){1,3}$/.test(value);
const isCorrelationId = (value: string) => CorrelationId.safeParse(value).success;
export const JSON_CONTENT_TYPE = 'application/json';

/**
 * Counter headers and the values they may hold. Anything else (a string, a fraction, a negative) is refused
 * at once: read as a number, "abc" once made a message go round the retry queues without end.
 */
const COUNTERS: Record<string, readonly [number, number]> = {
  [HEADERS.schemaVersion]: [1, 1_000],
  [HEADERS.attempt]: [1, 10_000],
  [HEADERS.attempts]: [1, 10_000],
  [HEADERS.retryBase]: [0, 10_000],
  [HEADERS.resend]: [0, 1_000],
  [HEADERS.workTimeout]: [1, 86_400_000],
  [HEADERS.expiresAt]: [0, Number.MAX_SAFE_INTEGER],
  [HEADERS.startedAt]: [0, Number.MAX_SAFE_INTEGER],
  [HEADERS.workMs]: [0, Number.MAX_SAFE_INTEGER],
};

/** A counter header's value, checked; `fallback` if it is absent. */
export function counterHeader(headers: Record<string, unknown> | undefined, name: string, fallback: number): number {
  const value = headers?.[name];
  if (value === undefined || value === null) return fallback;
  const [min, max] = COUNTERS[name] ?? [0, Number.MAX_SAFE_INTEGER];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new MalformedMessageError(`header ${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(value)?.slice(0, 40)}`);
  }
  return value;
}

const text = (value: unknown, name: string, valid: (value: string) => boolean, expected: string): string => {
  if (typeof value !== 'string' || value.length === 0) throw new MalformedMessageError(`missing ${name}`);
  if (!valid(value)) throw new MalformedMessageError(`${name} must be ${expected}, not ${JSON.stringify(value.slice(0, 40))}`);
  return value;
};

/**
 * Reads an envelope back (from a delivery or a basic.get), strictly: ids are UUIDs, the correlation id is
 * printable ASCII, counters are integers in range, the body is JSON. Throws MalformedMessageError naming
 * what is wrong; such a message is dead-lettered at once, never retried.
 */
export function decode(message: Pick<ConsumeMessage, 'content' | 'properties'>): Envelope {
  const { properties } = message;
  const headers = properties.headers ?? {};
  if (properties.contentType !== JSON_CONTENT_TYPE) {
    throw new MalformedMessageError(`content type must be ${JSON_CONTENT_TYPE}, not ${JSON.stringify(String(properties.contentType ?? '(none)').slice(0, 60))}`);
  }
  const schemaVersion = counterHeader(headers, HEADERS.schemaVersion, SCHEMA_VERSION);
  if (schemaVersion !== SCHEMA_VERSION) throw new MalformedMessageError(`unsupported schema version ${schemaVersion}`);
  for (const name of Object.keys(COUNTERS)) counterHeader(headers, name, 0);
  // A replay counts on from x-retry-base, always below x-attempt: at or above it, the retry budget would stretch without end.
  if (counterHeader(headers, HEADERS.retryBase, 0) >= counterHeader(headers, HEADERS.attempt, 1)) {
    throw new MalformedMessageError(`header ${HEADERS.retryBase} must be below ${HEADERS.attempt}`);
  }
  const causationId = headers[HEADERS.causationId] ?? '';
  if (causationId !== '') text(causationId, `${HEADERS.causationId} header`, isId, 'a UUID or empty');
  const envelope = {
    messageId: text(properties.messageId, 'message id', isId, 'a UUID'),
    type: text(properties.type, 'type', isMessageType, 'a message type such as inventory.reserve'),
    sagaId: text(headers[HEADERS.sagaId], `${HEADERS.sagaId} header`, isId, 'a UUID'),
    correlationId: text(properties.correlationId, 'correlation id', isCorrelationId, '1 to 128 printable ASCII characters'),
    causationId: causationId as string,
    schemaVersion,
    payload: undefined as unknown,
    headers: extraHeaders(headers),
  };
  try {
    envelope.payload = JSON.parse(message.content.toString('utf8'));
  } catch {
    throw new MalformedMessageError('body is not valid JSON');
  }
  return envelope;
}

/**
 * What makes an envelope one no consumer would read (see decode), or null: checked before publishing, so
 * that such a message is refused where it was made, with the reason, instead of failing on every consumer.
 */
export function envelopeProblem(envelope: Envelope): string | null {
  if (!isId(envelope.messageId)) return `message id must be a UUID, not ${JSON.stringify(String(envelope.messageId).slice(0, 40))}`;
  if (!isId(envelope.sagaId)) return `saga id must be a UUID, not ${JSON.stringify(String(envelope.sagaId).slice(0, 40))}`;
  if (envelope.causationId !== '' && !isId(envelope.causationId)) return `causation id must be a UUID or empty, not ${JSON.stringify(String(envelope.causationId).slice(0, 40))}`;
  if (!isMessageType(envelope.type)) return `type must be a message type such as inventory.reserve, not ${JSON.stringify(String(envelope.type).slice(0, 40))}`;
  if (!isCorrelationId(envelope.correlationId)) return `correlation id must be 1 to 128 printable ASCII characters (it has ${String(envelope.correlationId).length})`;
  return null;
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
