import { pino, type Logger } from 'pino';

/**
 * Structured JSON logs; every line names the process. Lines about a message add sagaId, messageId and type.
 * Lines are buffered and written asynchronously (flushed on exit): a synchronous write per line into a
 * pipe was the largest single CPU cost under load. Each handled message logs at `debug`; `info` keeps
 * the lifecycle (start, stop, sagas ended), warnings and errors.
 */
export function createLogger(name: string, level: string): Logger {
  return pino(
    { name, level, base: { service: name }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: false, minLength: 4096 }),
  );
}
export type { Logger };
