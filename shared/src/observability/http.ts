import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, SpanStatusCode } from '@opentelemetry/api';
import { CorrelationId } from '../contracts/define.js';
import { HTTP_DURATION, HTTP_REQUESTS, metricsEnabled } from './metrics.js';
import { startServerSpan } from './tracing.js';

type Request = IncomingMessage & { route?: { path?: unknown }; baseUrl?: string };

/** Health probes and metric scrapes: every few seconds, nothing to trace or to log. */
export const isProbe = (url: string | undefined): boolean => /^\/(health|metrics)(\/|\?|$)/.test(url ?? '');

/**
 * Express middleware, first in line on every process: counts and times each request by its route's
 * pattern (`/orders/:id`, never the path itself, whose ids would make a series each), opens its server span
 * (continuing a traceparent the caller sent; not for probes), and echoes a well-formed `X-Correlation-Id`.
 */
export function httpObservability() {
  return (request: Request, response: ServerResponse, next: () => void): void => {
    const started = performance.now();
    const correlationId = request.headers['x-correlation-id'];
    if (typeof correlationId === 'string' && CorrelationId.safeParse(correlationId).success) response.setHeader('X-Correlation-Id', correlationId);
    const server = isProbe(request.url) ? undefined : startServerSpan(request.method ?? 'GET', request.headers);
    response.once('close', () => {
      const route = routeOf(request);
      const method = request.method ?? 'GET';
      if (metricsEnabled()) {
        HTTP_REQUESTS.bind(method, route, String(response.statusCode)).inc();
        HTTP_DURATION.bind(method, route).observe((performance.now() - started) / 1_000);
      }
      if (server) {
        server.span.updateName(`${method} ${route}`);
        server.span.setAttributes({ 'http.route': route, 'http.response.status_code': response.statusCode });
        if (response.statusCode >= 500) server.span.setStatus({ code: SpanStatusCode.ERROR });
        server.span.end();
      }
    });
    if (server) context.with(server.context, next);
    else next();
  };
}

/** The route's pattern as the router matched it; requests no route took (404s, static files) share one label. */
function routeOf(request: Request): string {
  const path = request.route?.path;
  return typeof path === 'string' ? `${request.baseUrl ?? ''}${path}` : '(unmatched)';
}
