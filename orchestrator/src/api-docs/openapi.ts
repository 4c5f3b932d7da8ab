import { CorrelationId, Id, InventoryQueries, NotificationQueries, PaymentQueries, Sku, StockItem } from '@sagaflow/shared';
import { createRequire } from 'node:module';
import { z } from 'zod';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiResponseObject, type ZodOpenApiResponsesObject } from 'zod-openapi';
import type { Role } from '../auth/principal.js';
import { SESSION_COOKIE } from '../auth/session.js';
import { ConsoleDeadLetterPage, ConsoleSaga, DeadLetterQuery, DiscardBody, NoteBody, ReplayBody, SagaQuery } from '../console/console.controller.js';
import { Discarded, Replayed } from '../console/dead-letters.js';
import { ErrorBody } from '../http/error-body.js';
import { IdempotencyKey } from '../orders/idempotency-keys.js';
import { HistoryEvent, OrderPage, OrderView } from '../orders/order.view.js';
import { OrderListQuery } from '../orders/orders.controller.js';
import { PlacedOrder, PlaceOrderBody } from '../orders/place-order.js';
import { ByOrder } from '../read-models/read.controller.js';
import { Awaiting, StepState } from '../saga-engine/saga-state.js';
import { SessionView, SignInBody } from '../ui/ui.controller.js';
import { DOCS_ASSETS } from './docs-page.js';

// The OpenAPI 3.1 document of the orchestrator's HTTP API, built from the zod schemas the routes validate
// with and answer in, so that it cannot drift from them. Served at GET /openapi.json, shown at /docs.

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });

/** Terminus's body for /health*: each dependency up or down (with why). */
const HealthCheck = z.object({
  status: z.enum(['ok', 'error', 'shutting_down']),
  info: z.record(z.string(), z.looseObject({ status: z.string() })).optional(),
  error: z.record(z.string(), z.looseObject({ status: z.string(), message: z.string().optional() })).optional(),
  details: z.record(z.string(), z.looseObject({ status: z.string(), message: z.string().optional() })),
});

const error = (id: string, description: string, headers?: z.ZodObject): ZodOpenApiResponseObject => ({ id, description, content: json(ErrorBody), headers });
const RetryAfter = z.object({ 'retry-after': z.string().meta({ description: 'Seconds to wait before trying again', example: '1' }) });
const ERRORS = {
  400: error('BadRequest', 'Invalid input. `errors` names each bad field (body, query, path parameter or header); a body that is not JSON gets the parser\'s message and no `errors`.'),
  401: error('Unauthorized', 'No bearer token (nor session), or one that is not valid (or a session that has ended).', z.object({ 'www-authenticate': z.string().meta({ example: 'Bearer realm="sagaflow"' }) })),
  403: error('Forbidden', "The token lacks the role the route needs, carries no Sagaflow role, or is bound to another customer; or a change made with a session cookie does not come from the dashboard's origin."),
  404: error('NotFound', 'No such resource (or another customer\'s, for a token bound to a customer).'),
  409: error('Conflict', 'The action is not allowed in the saga\'s current state.'),
  413: error('PayloadTooLarge', 'The body is over 100 KB (no `error` field: the body parser answers).'),
  415: error('UnsupportedMediaType', 'A JSON body in a charset other than UTF-8 (no `error` field: the body parser answers).'),
  422: error('IdempotencyKeyReused', 'The Idempotency-Key was used before with a different body.'),
  429: error('TooManyOrders', 'Sagaflow has as much work in hand as it can finish quickly (ADMIT_MAX_ACTIVE_SAGAS, ADMIT_MAX_QUEUE_WAIT_MS): nothing was placed; try again after Retry-After (with the same Idempotency-Key).', RetryAfter),
  503: error('Unavailable', 'PostgreSQL, RabbitMQ or the service answering a read is out of reach; safe to retry (with the same Idempotency-Key).', RetryAfter),
} satisfies Record<number, ZodOpenApiResponseObject>;
const errors = (...codes: (keyof typeof ERRORS)[]): ZodOpenApiResponsesObject => Object.fromEntries(codes.map((code) => [code, ERRORS[code]]));

type Access = Role | 'public';
/**
 * One route: who may call it (a bearer token or the dashboard's session cookie, with the role as OpenAPI 3.1
 * allows for such schemes) and the answers every guarded route can give besides its own.
 */
function route(access: Access, operation: ZodOpenApiOperationObject): ZodOpenApiOperationObject {
  if (access === 'public') return { ...operation, security: [] };
  const who = access === 'operator' ? 'Needs the `operator` role.' : 'Needs the `client` or `operator` role.';
  return {
    ...operation,
    description: [operation.description, who].filter(Boolean).join('\n\n'),
    security: [{ bearer: [access] }, { session: [access] }],
    responses: { ...operation.responses, ...errors(401, 403, 503) },
  };
}

const ok = (description: string, schema: z.ZodType): ZodOpenApiResponseObject => ({ description, content: json(schema) });
const body = (schema: z.ZodType, extra: object = {}) => ({ required: true, content: { 'application/json': { schema, ...extra } } });
/** Any route that takes a JSON body may also get the body parser's 413 and 415. */
const BODY_ERRORS = errors(400, 413, 415);

const placeOrderExamples = {
  confirmed: { summary: 'An order that confirms', value: { customerId: 'ada', items: [{ sku: 'SKU-COFFEE', quantity: 2 }], paymentMethod: 'tok_visa' } },
  declined: { summary: 'A declined card: the saga compensates and the order ends CANCELLED', value: { customerId: 'ada', items: [{ sku: 'SKU-MUG', quantity: 1 }], paymentMethod: 'tok_chargeDeclined' } },
};

const SagaId = z.object({ id: Id.meta({ description: 'The saga id' }) });
const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

function build() {
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Sagaflow orchestrator',
      version,
      description:
        'Places orders, each carried out by a saga over RabbitMQ, and reads them back; the failed-saga console for operators. ' +
        'Amounts are integers in minor units. Every route not marked public (security: none) needs `Authorization: Bearer <API key or JWT>`, or the dashboard\'s session cookie.',
    },
    tags: [
      { name: 'orders', description: 'Place and read orders with their sagas' },
      { name: 'reads', description: "The services' own data, to check the invariants from outside" },
      { name: 'console', description: 'The failed-saga console: dead letters and sagas that need a person (operator role)' },
      { name: 'dashboard', description: 'The dashboard at /ui: its session and live updates (operator role)' },
      { name: 'health', description: 'Liveness, readiness and metrics (public)' },
      { name: 'docs', description: 'This document and its interactive page (public)' },
    ],
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An API key (`API_KEYS`) or a JWT of the configured issuer whose roles claim holds `client` or `operator`. ' +
            '`client` places and reads orders; `operator` may do that too, and use the console. ' +
            'A route lists the role it needs in its security requirement.',
        },
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: SESSION_COOKIE,
          description:
            "The dashboard's session, from POST /ui/session (operators only). A request it authenticates that changes something must come from the dashboard's own origin (`Origin`).",
        },
      },
      // Named once here, referenced wherever the document uses them.
      schemas: { OrderView, OrderPage, StepState, HistoryEvent, Awaiting, PlacedOrder, StockItem, ConsoleSaga, ConsoleDeadLetterPage, SessionView, ErrorBody },
    },
    paths: {
      '/orders': {
        post: route('client', {
          tags: ['orders'],
          summary: 'Place an order',
          description:
            'Accepts the order and starts its saga; follow it at `Location`. With an `Idempotency-Key`, a repeat of the same body gets the first answer again (`Idempotent-Replayed: true`) and places nothing. ' +
            '`faults` (a fault plan per command type) is accepted only when the system runs with FAULT_INJECTION=true. A token bound to a customer may order for that customer only (403).',
          requestParams: {
            header: z.object({
              'x-correlation-id': CorrelationId.optional().meta({ description: 'Carried as the AMQP correlation id of every message of the saga (default: the order id)' }),
              'idempotency-key': IdempotencyKey.optional().meta({ description: 'Makes a retry safe: keys are per customer and remembered for IDEMPOTENCY_TTL_HOURS' }),
            }),
          },
          requestBody: body(PlaceOrderBody, { examples: placeOrderExamples }),
          responses: {
            202: {
              description: 'Accepted: the saga runs on; the order is PENDING until it settles.',
              content: json(PlacedOrder),
              headers: z.object({
                location: z.string().meta({ description: 'The order: /orders/{id}' }),
                'idempotent-replayed': z.literal('true').optional().meta({ description: 'Present when this is the first answer to the same Idempotency-Key again' }),
              }),
            },
            ...BODY_ERRORS,
            ...errors(422, 429),
          },
        }),
        get: route('client', {
          tags: ['orders'],
          summary: 'List orders, newest first',
          description: 'Keyset pages: pass `nextCursor` back as `cursor`. A token bound to a customer sees that customer\'s orders only.',
          requestParams: { query: OrderListQuery },
          responses: { 200: ok('A page of orders (without their history)', OrderPage), ...errors(400) },
        }),
      },
      '/orders/{id}': {
        get: route('client', {
          tags: ['orders'],
          summary: 'One order with its saga: steps, attempts, failures and history',
          requestParams: { path: z.object({ id: Id.meta({ description: 'The order id' }) }) },
          responses: { 200: ok('The order', OrderView), ...errors(400, 404) },
        }),
      },
      '/inventory': {
        get: route('client', { tags: ['reads'], summary: 'The catalog with stock', responses: { 200: ok('Every SKU', InventoryQueries.catalog.result) } }),
      },
      '/inventory/{sku}': {
        get: route('client', {
          tags: ['reads'],
          summary: 'One SKU with its stock',
          requestParams: { path: z.object({ sku: Sku }) },
          responses: { 200: ok('The SKU', StockItem), ...errors(400, 404) },
        }),
      },
      '/payments': {
        get: route('client', {
          tags: ['reads'],
          summary: "An order's charges and refunds",
          requestParams: { query: ByOrder },
          responses: { 200: ok('Charges and refunds, oldest first', PaymentQueries.forOrder.result), ...errors(400, 404) },
        }),
      },
      '/notifications': {
        get: route('client', {
          tags: ['reads'],
          summary: "An order's notifications",
          requestParams: { query: ByOrder },
          responses: { 200: ok('Confirmation or cancellation notices', NotificationQueries.forOrder.result), ...errors(400, 404) },
        }),
      },
      '/console/dead-letters': {
        get: route('operator', {
          tags: ['console'],
          summary: 'A page of dead letters (headers only), with their sagas and every parking queue\'s depth',
          requestParams: { query: DeadLetterQuery },
          responses: { 200: ok('A page; `nextCursor` is null at the end', ConsoleDeadLetterPage), ...errors(400) },
        }),
      },
      '/console/dead-letters/replay': {
        post: route('operator', {
          tags: ['console'],
          summary: 'Send dead letters back to their original queue with a fresh retry budget',
          requestBody: body(ReplayBody),
          responses: { 201: ok('What was replayed, and the ids no .dlq holds', Replayed), ...BODY_ERRORS },
        }),
      },
      '/console/dead-letters/discard': {
        post: route('operator', {
          tags: ['console'],
          summary: 'Remove dead letters for good, with the reason recorded in their sagas',
          requestBody: body(DiscardBody),
          responses: { 201: ok('What was discarded, and the ids no .dlq holds', Discarded), ...BODY_ERRORS },
        }),
      },
      '/console/sagas': {
        get: route('operator', {
          tags: ['console'],
          summary: 'Sagas by status, stuck, running too long, or with a command set aside',
          requestParams: { query: SagaQuery },
          responses: { 200: ok('Sagas, least recently changed first', z.array(ConsoleSaga)), ...errors(400) },
        }),
      },
      '/console/sagas/{id}/retry': {
        post: route('operator', {
          tags: ['console'],
          summary: "Retry a saga's awaited command, failed step or failed undo",
          requestParams: { path: SagaId },
          requestBody: body(NoteBody.partial()),
          responses: { 201: ok('The saga, as GET /orders/{id} shows it', OrderView), ...BODY_ERRORS, ...errors(404, 409) },
        }),
      },
      '/console/sagas/{id}/compensate': {
        post: route('operator', {
          tags: ['console'],
          summary: 'Undo a saga still before its pivot',
          requestParams: { path: SagaId },
          requestBody: body(NoteBody),
          responses: { 201: ok('The saga, as GET /orders/{id} shows it', OrderView), ...BODY_ERRORS, ...errors(404, 409) },
        }),
      },
      '/health': {
        get: route('public', {
          tags: ['health'],
          summary: 'The same as /health/ready (kept for compatibility)',
          responses: { 200: ok('Ready', HealthCheck), 503: ok('Not ready: names what is down', HealthCheck) },
        }),
      },
      '/health/ready': {
        get: route('public', {
          tags: ['health'],
          summary: 'Readiness: RabbitMQ and PostgreSQL reachable',
          responses: { 200: ok('Ready', HealthCheck), 503: ok('Not ready: names what is down (it reconnects by itself)', HealthCheck) },
        }),
      },
      '/health/live': {
        get: route('public', { tags: ['health'], summary: 'Liveness: the process runs and answers', responses: { 200: ok('Alive', HealthCheck) } }),
      },
      '/metrics': {
        get: route('public', {
          tags: ['health'],
          summary: "Prometheus metrics (`sagaflow_*` and the process's own)",
          description: 'Public like /health, so that a scraper needs no token: serve it on an internal network only. 404 with METRICS=off.',
          responses: { 200: { description: "Prometheus's text format", content: { 'text/plain': { schema: { type: 'string' } } } }, ...errors(404) },
        }),
      },
      '/ui/': {
        get: route('public', {
          tags: ['dashboard'],
          summary: 'The dashboard: sign in with an operator key or token (GET /ui redirects here)',
          description: 'Static files (this page, and its script and styles beside it under /ui/), served with a strict Content-Security-Policy.',
          // Served by express's static middleware, not a Nest route: the route-coverage test knows it by this.
          'x-static-files': true,
          responses: { 200: { description: 'An HTML page', content: { 'text/html': { schema: { type: 'string' } } } } },
        }),
      },
      '/ui/session': {
        post: route('public', {
          tags: ['dashboard'],
          summary: 'Sign in to the dashboard with an API key or a JWT: sets the session cookie',
          description: "Operators only. Must come from the dashboard's own origin (`Origin`).",
          requestBody: body(SignInBody),
          responses: {
            200: { ...ok('Signed in', SessionView), headers: z.object({ 'set-cookie': z.string().meta({ description: `${SESSION_COOKIE}: HttpOnly, SameSite=Strict` }) }) },
            ...BODY_ERRORS,
            ...errors(401, 403, 503),
          },
        }),
        get: route('operator', { tags: ['dashboard'], summary: 'Who is signed in', responses: { 200: ok('The session', SessionView) } }),
        delete: route('public', {
          tags: ['dashboard'],
          summary: 'Sign out: removes the session cookie (public, so that an ended session can still sign out)',
          description: "Must come from the dashboard's own origin (`Origin`).",
          responses: { 204: { description: 'Signed out' }, ...errors(403) },
        }),
      },
      '/ui/events': {
        get: route('operator', {
          tags: ['dashboard'],
          summary: 'Live updates as server-sent events; the stream ends with the session',
          description:
            'Events: `sagas` (`{sagas: [{sagaId, orderId, status, updatedAt}], more}`: sagas that changed) and `dead-letters` (`{depths}`: when the dead-letter depths moved), about once a second; a comment line keeps an idle stream open.',
          responses: { 200: { description: 'An event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } } },
        }),
      },
      '/openapi.json': {
        get: route('public', {
          tags: ['docs'],
          summary: 'This document (OpenAPI 3.1)',
          responses: { 200: { description: 'The document', content: { 'application/json': { schema: { type: 'object' } } } } },
        }),
      },
      '/docs': {
        get: route('public', {
          tags: ['docs'],
          summary: 'Interactive API documentation (Swagger UI, served from this process: no CDN)',
          responses: { 200: { description: 'An HTML page', content: { 'text/html': { schema: { type: 'string' } } } } },
        }),
      },
      '/docs/{asset}': {
        get: route('public', {
          tags: ['docs'],
          summary: "The page's scripts and styles",
          requestParams: { path: z.object({ asset: z.enum(Object.keys(DOCS_ASSETS) as [string, ...string[]]) }) },
          responses: { 200: { description: 'The asset' }, ...errors(404) },
        }),
      },
    },
  });
}

let document: ReturnType<typeof build> | undefined;
/** Built on first use, then kept: the schemas do not change while the process runs. */
export const openApiDocument = () => (document ??= build());
