import type { Envelope } from '../contracts/envelope.js';
import { HEADERS } from '../contracts/envelope.js';
import { traceIdOf } from '../observability/tracing.js';

/**
 * What every log line about a message names: its ids, its saga, its correlation id and its trace, so that
 * one grep (or one click from a trace) finds every line of an order in every process.
 */
export interface MessageLogFields {
  messageId: unknown;
  type: unknown;
  sagaId: unknown;
  correlationId: unknown;
  traceId: string | undefined;
}

/** A delivery as it came (nothing about it checked yet). */
export function deliveryLogFields({ properties }: { properties: { messageId?: unknown; type?: unknown; correlationId?: unknown; headers?: Record<string, unknown> } }): MessageLogFields {
  return {
    messageId: properties.messageId,
    type: properties.type,
    sagaId: properties.headers?.[HEADERS.sagaId],
    correlationId: properties.correlationId,
    traceId: traceIdOf(properties.headers),
  };
}

/** A message read as an envelope. */
export function envelopeLogFields(envelope: Envelope): MessageLogFields {
  return { messageId: envelope.messageId, type: envelope.type, sagaId: envelope.sagaId, correlationId: envelope.correlationId, traceId: traceIdOf(envelope.headers) };
}
