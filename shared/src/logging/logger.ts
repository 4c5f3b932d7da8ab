import { pino, type Logger } from 'pino';

/** Structured JSON logs; every line names the process. Lines about a message add sagaId, messageId and type. */
export function createLogger(name: string, level: string): Logger {
  return pino({ name, level, base: { service: name }, timestamp: pino.stdTimeFunctions.isoTime });
}
export type { Logger };
