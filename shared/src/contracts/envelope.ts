import { v7 as uuidv7 } from 'uuid';

/** Bumped when a payload contract changes incompatibly; consumers reject versions they do not know. */
export const SCHEMA_VERSION = 1;

/** The metadata every saga message carries, next to its typed payload. */
export interface MessageMeta {
  /** Unique per message; redeliveries and re-sends keep it, so consumers can dedupe. */
  messageId: string;
  /** `<service>.<verb>` for commands, `<command>.succeeded|failed` for replies. */
  type: string;
  sagaId: string;
  /** Ties every message of one business transaction together (the order's correlation id). */
  correlationId: string;
  /** The message that caused this one; empty for the first command of a saga. */
  causationId: string;
  schemaVersion: number;
}

export interface Envelope<P = unknown> extends MessageMeta {
  payload: P;
  /** Further AMQP headers the message travels with (retry policy, attempt count, fault plan, ...). */
  headers?: Record<string, string | number>;
}

/** Random bytes for ids, drawn from the system 4 KB at a time: one call per id cost more than the rest of making it. */
const entropy = new Uint8Array(4096);
let drawn = entropy.length;

/** A UUIDv7: time-ordered to the millisecond (index-friendly), random below that. */
export function newMessageId(): string {
  if (drawn === entropy.length) {
    crypto.getRandomValues(entropy);
    drawn = 0;
  }
  return uuidv7({ random: entropy.subarray(drawn, (drawn += 16)) });
}

/** AMQP header names for the metadata that has no standard AMQP property. */
export const HEADERS = {
  sagaId: 'x-saga-id',
  causationId: 'x-causation-id',
  schemaVersion: 'x-schema-version',
  // Retries: the step's policy, which attempt this delivery is (1-based), and the failures so far.
  retryPolicy: 'x-retry-policy',
  attempt: 'x-attempt',
  failures: 'x-failures',
  firstFailureAt: 'x-first-failure-at',
  lastFailureAt: 'x-last-failure-at',
  /** Attempts made before a replay from a dead-letter queue: the retry budget counts from here again. */
  retryBase: 'x-retry-base',
  replayedAt: 'x-replayed-at',
  /** On a reply: how many attempts the participant needed. */
  attempts: 'x-attempts',
  /** How many times the orchestrator sent this command before (a publish never confirmed, a person's retry); 0 the first time. */
  resend: 'x-resend',
  /** On a command: how long the participant may work on one attempt (ms, start-to-close). */
  workTimeout: 'x-work-timeout',
  /** On a command: when the saga stops wanting it (epoch ms); a later delivery is dead-lettered as expired, unexecuted. */
  expiresAt: 'x-expires-at',
  /** When the participant first took the command from its queue (epoch ms): kept across its retries, and on the reply. */
  startedAt: 'x-started-at',
  /** On a reply: from that first start to the reply (ms), the participant's retries included. */
  workMs: 'x-work-ms',
  /** The fault to inject for this command (only honoured when fault injection is enabled). */
  faultPlan: 'x-fault-plan',
  // Added when a message is dead-lettered by a Sagaflow consumer.
  deadLetterReason: 'x-dead-letter-reason',
  deadLetterError: 'x-dead-letter-error',
  originalQueue: 'x-original-queue',
  deadLetteredAt: 'x-dead-lettered-at',
  deadLetteredBy: 'x-dead-lettered-by',
  /** Set when a moved message's properties or headers had to be made carriable (see the consumer's republish): why. */
  sanitized: 'x-sanitized',
} as const;

/**
 * Which attempt (1-based, after broker retries) and which send (0-based, after timeouts) a delivery of a
 * command is. The codec has checked both counters when it read the envelope.
 */
export const attemptOf = (command: Envelope) => (command.headers?.[HEADERS.attempt] as number | undefined) ?? 1;
export const resendOf = (command: Envelope) => (command.headers?.[HEADERS.resend] as number | undefined) ?? 0;
/** When the saga stops wanting this command (epoch ms), or null if it must run however late. */
export const expiresAtOf = (command: Envelope) => (command.headers?.[HEADERS.expiresAt] as number | undefined) ?? null;
/** The command's start-to-close limit, or `fallback` when it carries none. */
export const workTimeoutOf = (command: Envelope, fallback: number) => (command.headers?.[HEADERS.workTimeout] as number | undefined) ?? fallback;

/** Builds the envelope of a message caused by `cause` (same saga and correlation). */
export function causedBy<P>(cause: MessageMeta, type: string, payload: P): Envelope<P> {
  return {
    messageId: newMessageId(),
    type,
    sagaId: cause.sagaId,
    correlationId: cause.correlationId,
    causationId: cause.messageId,
    schemaVersion: SCHEMA_VERSION,
    payload,
  };
}
