/**
 * Why a message was dead-lettered. Goes into the `x-dead-letter-reason` header.
 * - malformed: not a Sagaflow envelope (bad JSON, missing id/type/saga id, unknown schema version)
 * - unknown-type: no handler for this message type on this queue
 * - invalid-payload: the payload fails its contract
 * - permanent-error: the handler says retrying cannot help
 * - retries-exhausted: the handler kept failing with errors that looked transient
 * - delivery-limit: started MAX_DELIVERIES times without being settled (it crashed or stalled its consumer)
 * - conflicting-duplicate: its message id was processed before, with a different body
 * - expired: the saga no longer wanted the command (past its deadline) when it came to be run: not executed
 */
export type DeadLetterReason =
  | 'malformed'
  | 'unknown-type'
  | 'invalid-payload'
  | 'permanent-error'
  | 'retries-exhausted'
  | 'delivery-limit'
  | 'conflicting-duplicate'
  | 'expired';

/** Thrown by a handler (or the kit) when a message must go to its queue's `.dlq` instead of being retried. */
export class DeadLetterError extends Error {
  constructor(
    readonly reason: DeadLetterReason,
    message: string,
  ) {
    super(message);
  }
}

/** A failure that retrying cannot fix; the message is dead-lettered at once. */
export class PermanentError extends DeadLetterError {
  constructor(message: string) {
    super('permanent-error', message);
  }
}

const CONNECTION_ERROR_CODES = new Set([
  // The network, and a name that does not resolve (now).
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  // PostgreSQL, connection exceptions.
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  // Out of resources: disk full, out of memory, too many connections, a configuration limit.
  '53000',
  '53100',
  '53200',
  '53300',
  '53400',
  // Read-only (a standby, or default_transaction_read_only), a statement timeout or cancel, an idle transaction ended.
  '25006',
  '57014',
  '25P03',
  // Admin shutdown, crash shutdown, cannot connect now, idle session ended; the system's I/O.
  '57P01',
  '57P02',
  '57P03',
  '57P05',
  '58000',
  '58030',
]);

/** RabbitMQ took a publish but never confirmed it: the channel is taken for wedged and opened anew. */
export class ConfirmTimeoutError extends Error {
  override readonly name = 'ConfirmTimeoutError';
}

/**
 * True when an error says PostgreSQL or RabbitMQ is away or cannot serve now: out of reach, out of disk or
 * connections, read-only, or too slow for its timeout. Such a failure says nothing about the message: it is
 * held and retried until the dependency is back, without using up the message's retry budget, and a
 * request answers 503 with Retry-After.
 */
export function isConnectionFailure(error: unknown): boolean {
  for (let current = error as any, depth = 0; current && depth < 5; current = current.cause, depth++) {
    if (CONNECTION_ERROR_CODES.has(String(current.code))) return true;
    if (current.name === 'ConnectionException' || current.name === 'ConfirmTimeoutError') return true;
    // `message nacked`: RabbitMQ refused a publish it could not take now (a quorum queue without a leader, say);
    // `timeout`: amqp-connection-manager could not send one in time while it reconnected.
    if (/Connection terminated|connection is closed|Channel closed|Connection closed|timeout exceeded when trying to connect|not queryable|Client has encountered a connection error|message nacked|^timeout$/i.test(String(current.message))) {
      return true;
    }
  }
  return false;
}

/** PostgreSQL gave up a transaction because of another one (deadlock, serialization): run it again. */
export function isTransactionConflict(error: unknown): boolean {
  for (let current = error as any, depth = 0; current && depth < 5; current = current.cause, depth++) {
    if (current.code === '40P01' || current.code === '40001') return true;
  }
  return false;
}
