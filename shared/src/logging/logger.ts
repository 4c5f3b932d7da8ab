import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino, stdSerializers, type Logger } from 'pino';
import type { Options as HttpOptions } from 'pino-http';
import { isProbe } from '../observability/http.js';

/** Request and response headers that carry credentials (API keys, JWTs, session cookies): never written to a log. */
const CREDENTIALS = ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]', 'req.headers["x-api-key"]'].flatMap((path) =>
  path.startsWith('req.headers') ? [path, path.replace('req.headers', 'reqHeaders')] : [path],
);

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

type HttpRequest = IncomingMessage & { id?: unknown; originalUrl?: string };

/**
 * pino-http's settings for access lines: answered requests at debug; refused ones at warn, and so is 503 (a
 * dependency out of reach, the client may retry); any other 5xx is a bug and logs at error. Probes and scrapes
 * are not logged. pino-http binds the request to a logger of its own as each one arrives, whatever the line's
 * level: bound lean (no headers), that costs little, and the headers (credentials redacted) go only into the
 * lines of refused and failed requests, which are written.
 */
export function accessLog(logger: Logger): HttpOptions {
  const withHeaders = (request: HttpRequest, response: ServerResponse, line: object) => (response.statusCode >= 400 ? { ...line, reqHeaders: request.headers } : line);
  return {
    logger,
    autoLogging: { ignore: (request) => isProbe(request.url) },
    customLogLevel: (_request, response, error) => ((error || response.statusCode >= 500) && response.statusCode !== 503 ? 'error' : response.statusCode >= 400 ? 'warn' : 'debug'),
    wrapSerializers: false,
    serializers: {
      req: (request: HttpRequest) => ({ id: request.id, method: request.method, url: request.originalUrl ?? request.url, remoteAddress: request.socket?.remoteAddress }),
      res: stdSerializers.res,
      err: stdSerializers.err,
    },
    customSuccessObject: withHeaders,
    customErrorObject: (request, response, _error, line) => withHeaders(request, response, line),
  };
}
