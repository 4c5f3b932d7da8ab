import type { ConsumeMessage, MessageProperties, Options } from 'amqplib';
import { newMessageId } from '../contracts/envelope.js';
import { MalformedMessageError, type OutgoingMessage } from './codec.js';

/**
 * Opt-in bundling (BUNDLE_MAX > 1): messages for one exchange and routing key that are ready together
 * travel as one AMQP message of this type, its body the list of their properties and bodies. Consumers
 * always understand bundles and take each part as a delivery of its own: it is acked, retried and
 * dead-lettered alone, as its own message with its own properties.
 */
export const BUNDLE_TYPE = 'sagaflow.bundle';

/** One part as it travels inside a bundle: the body as text, and the properties a consumer reads. */
interface BundlePart {
  properties: Pick<Options.Publish, 'messageId' | 'type' | 'correlationId' | 'appId' | 'contentType' | 'timestamp' | 'headers'>;
  body: string;
}

/** Several messages (same exchange and routing key) as one persistent AMQP message. */
export function bundle(messages: OutgoingMessage[], appId: string): OutgoingMessage {
  const parts: BundlePart[] = messages.map(({ content, options: { messageId, type, correlationId, appId, contentType, timestamp, headers } }) => ({
    properties: { messageId, type, correlationId, appId, contentType, timestamp, headers },
    body: content.toString('utf8'),
  }));
  return {
    content: Buffer.from(JSON.stringify(parts)),
    options: {
      messageId: newMessageId(),
      type: BUNDLE_TYPE,
      appId,
      contentType: 'application/json',
      persistent: true,
      timestamp: Math.floor(Date.now() / 1000),
      headers: { 'x-bundle-size': messages.length },
    },
  };
}

export const isBundle = (message: Pick<ConsumeMessage, 'properties'>): boolean => message.properties.type === BUNDLE_TYPE;

/**
 * The parts of a bundle as deliveries: each has the bundle's delivery fields (tag, redelivered) and its
 * own properties and body. Throws MalformedMessageError if the bundle cannot be read.
 */
export function unbundle<M extends { content: Buffer; fields: object; properties: MessageProperties }>(message: M): M[] {
  let parts: unknown;
  try {
    parts = JSON.parse(message.content.toString('utf8'));
  } catch {
    throw new MalformedMessageError('bundle body is not valid JSON');
  }
  if (!Array.isArray(parts) || parts.length === 0) throw new MalformedMessageError('bundle body is not a non-empty list of parts');
  return parts.map((part: Partial<BundlePart>, index) => {
    if (typeof part?.body !== 'string' || typeof part.properties !== 'object' || part.properties === null) {
      throw new MalformedMessageError(`bundle part ${index} has no properties or body`);
    }
    const properties = { ...part.properties, headers: part.properties.headers ?? {}, deliveryMode: 2 } as MessageProperties;
    return { ...message, fields: { ...message.fields }, properties, content: Buffer.from(part.body, 'utf8') };
  });
}
