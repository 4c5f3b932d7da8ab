import { pino, type Logger } from 'pino';

/** Request and response headers that carry credentials (API keys, JWTs, session cookies): never written to a log. */
const CREDENTIALS = ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]', 'req.headers["x-api-key"]'];

/** Every destination this process writes logs to, so a deliberate crash can flush them first. */
const destinations = new Set<ReturnType<typeof pino.destination>>();

/**
 * Structured JSON logs; every line names the process. Lines about a message add sagaId, messageId and type.
 * Lines are written asynchronously (flushed on exit): a synchronous write per line into a pipe was the
 * largest single CPU cost under load; under load the lines waiting for a write go out together. Each
 * handled message logs at `debug`; `info` keeps the lifecycle (start, stop, sagas ended), warnings and errors.
 */
export function createLogger(name: string, level: string): Logger {
  const destination = pino.destination({ dest: 1, sync: false });
  destinations.add(destination);
  return pino({ name, level, base: { service: name }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: CREDENTIALS, censor: '[redacted]' } }, destination);
}

/** Writes out every log line still waiting, now (before a deliberate SIGKILL, which would lose them). */
export function flushLogsNow(): void {
  for (const destination of destinations) {
    try {
      destination.flushSync();
    } catch {
      // Not ready yet (nothing written) or already closed: nothing to flush.
    }
  }
}
export type { Logger };
