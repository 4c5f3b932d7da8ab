/**
 * Why a message was dead-lettered. Goes into the `x-dead-letter-reason` header.
 * - malformed: not a Sagaflow envelope (bad JSON, missing id/type/saga id, unknown schema version)
 * - unknown-type: no handler for this message type on this queue
 * - invalid-payload: the payload fails its contract
 * - permanent-error: the handler says retrying cannot help
 * - retries-exhausted: the handler kept failing with errors that looked transient
 */
export type DeadLetterReason = 'malformed' | 'unknown-type' | 'invalid-payload' | 'permanent-error' | 'retries-exhausted';

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
