import {
  type Attributes,
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
  type Tracer,
} from '@opentelemetry/api';

/**
 * OpenTelemetry tracing: one trace per order, from the HTTP request through the saga row (its outbox),
 * the AMQP headers of every command and reply, and each participant. Off unless the standard variables ask
 * for an exporter (OTEL_TRACES_EXPORTER, or an OTLP endpoint); off, the SDK is not even loaded and every
 * helper here returns at its first line.
 *
 * Spans are our own where the message path runs: NestJS's custom transport and the raw pg and amqplib
 * calls of the hot path get none from the library instrumentations (which need ESM loader hooks, patch
 * every call, and know nothing of batches, bundles or a context kept in a saga row).
 */
let tracer: Tracer | undefined;
let provider: { shutdown(): Promise<void> } | undefined;

export const tracingOn = (): boolean => tracer !== undefined;

/** W3C trace context as it travels: AMQP headers, the saga row (`trace_context`). */
// A type, not an interface: it is then a Record<string, unknown> as well, like the headers it travels in.
export type TraceCarrier = {
  traceparent: string;
  tracestate?: string;
};

const TRACEPARENT = /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/;
const TRACESTATE = /^[\x20-\x7e]{1,512}$/;

/** Whether the environment asks for traces: OTEL_TRACES_EXPORTER (not `none`), or an OTLP endpoint; never with OTEL_SDK_DISABLED. */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((name) => name.trim().toLowerCase()).filter(Boolean);
  if (exporters.length) return !exporters.includes('none');
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

/**
 * Starts the SDK if the environment asks for it: an OTLP exporter over HTTP (protobuf by default, JSON with
 * OTEL_EXPORTER_OTLP_PROTOCOL=http/json; endpoint, headers, timeout from the standard variables) or the
 * console, batched; W3C trace context; the service named `sagaflow-<process>` unless OTEL_SERVICE_NAME says.
 */
export async function startTracing(processName: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (tracer || !tracingWanted(env)) return;
  const [sdk, { W3CTraceContextPropagator }, { AsyncLocalStorageContextManager }, { detectResources, envDetector, resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/core'),
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/resources'),
  ]);
  const exporters = (env.OTEL_TRACES_EXPORTER ?? 'otlp').split(',').map((name) => name.trim().toLowerCase());
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  const exporter = exporters.includes('console')
    ? new sdk.ConsoleSpanExporter()
    : protocol === 'http/json'
      ? new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter()
      : new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
  const number = (name: string) => (env[name] && Number.isFinite(Number(env[name])) ? Number(env[name]) : undefined);
  const created = new sdk.TracerProvider({
    resource: resourceFromAttributes({ 'service.name': `sagaflow-${processName}`, 'service.namespace': 'sagaflow' }).merge(detectResources({ detectors: [envDetector] })),
    sampler: samplerFrom(sdk, env),
    spanProcessors: [
      new sdk.BatchSpanProcessor({
        exporter,
        scheduledDelayMillis: number('OTEL_BSP_SCHEDULE_DELAY'),
        maxQueueSize: number('OTEL_BSP_MAX_QUEUE_SIZE'),
        maxExportBatchSize: number('OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
        exportTimeoutMillis: number('OTEL_BSP_EXPORT_TIMEOUT'),
      }),
    ],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(created);
  provider = created;
  tracer = created.getTracer('sagaflow');
}

/** OTEL_TRACES_SAMPLER and its argument, as the specification names them (parentbased_always_on by default). */
function samplerFrom(sdk: typeof import('@opentelemetry/sdk-trace'), env: NodeJS.ProcessEnv) {
  const ratio = Number(env.OTEL_TRACES_SAMPLER_ARG ?? 1);
  const root = (name: string) =>
    name === 'always_off' ? new sdk.AlwaysOffSampler() : name === 'traceidratio' ? new sdk.TraceIdRatioBasedSampler(Number.isFinite(ratio) ? ratio : 1) : new sdk.AlwaysOnSampler();
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  return name.startsWith('parentbased_') ? new sdk.ParentBasedSampler({ root: root(name.slice('parentbased_'.length)) }) : root(name);
}

/** Sends the spans still buffered (a graceful stop). */
export async function stopTracing(): Promise<void> {
  await provider?.shutdown().catch(() => undefined);
}

const getter: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => (typeof carrier[key] === 'string' ? (carrier[key] as string) : undefined),
};

/** The trace context a message or a saga carries, if well-formed (anything can arrive in a header). */
export function traceCarrierOf(headers: Record<string, unknown> | null | undefined): TraceCarrier | undefined {
  const traceparent = headers?.traceparent;
  if (typeof traceparent !== 'string' || !TRACEPARENT.test(traceparent)) return undefined;
  const tracestate = headers!.tracestate;
  return typeof tracestate === 'string' && TRACESTATE.test(tracestate) ? { traceparent, tracestate } : { traceparent };
}

/** The trace id of a message or a saga, for its log lines (undefined without a trace). */
export function traceIdOf(headers: Record<string, unknown> | null | undefined): string | undefined {
  const traceparent = headers?.traceparent;
  return typeof traceparent === 'string' ? TRACEPARENT.exec(traceparent)?.[1] : undefined;
}

/** The current span's context as a carrier (stored with a saga it starts), or null without one. */
export function activeTraceCarrier(): TraceCarrier | null {
  if (!tracer || !trace.getSpan(context.active())) return null;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return traceCarrierOf(carrier) ?? null;
}

const parentOf = (carrier: Record<string, unknown> | null | undefined): Context => (carrier ? propagation.extract(ROOT_CONTEXT, carrier, getter) : ROOT_CONTEXT);

/** Writes the span's context into headers (as W3C traceparent / tracestate). */
function inject(span: Span, headers: Record<string, unknown>): void {
  propagation.inject(trace.setSpan(ROOT_CONTEXT, span), headers);
}

const messaging = (operation: string, destination: string, properties: { messageId?: unknown; correlationId?: unknown }, sagaId: unknown): Attributes => ({
  'messaging.system': 'rabbitmq',
  'messaging.operation.type': operation,
  'messaging.destination.name': destination,
  'messaging.message.id': String(properties.messageId ?? ''),
  'messaging.message.conversation_id': String(properties.correlationId ?? ''),
  'sagaflow.saga.id': String(sagaId ?? ''),
});

/**
 * A span for a delivery being processed, child of the context its headers carry. The headers are then
 * rewritten to this span's context, so whatever the handler sends (a reply, the next command) is caused by it.
 */
export function startConsumeSpan(queue: string, message: { properties: { type?: unknown; messageId?: unknown; correlationId?: unknown; headers?: Record<string, unknown> } }): Span | undefined {
  if (!tracer) return undefined;
  const headers = (message.properties.headers ??= {});
  const span = tracer.startSpan(
    `process ${String(message.properties.type)}`,
    { kind: SpanKind.CONSUMER, attributes: messaging('process', queue, message.properties, headers['x-saga-id']) },
    parentOf(traceCarrierOf(headers)),
  );
  delete headers.tracestate;
  inject(span, headers);
  return span;
}

/**
 * A span for publishing one message, child of the context in its headers (what caused it) or else of the
 * active one; the headers then carry this span's context to the consumer.
 */
export function startPublishSpan(exchange: string, type: string, properties: { messageId?: unknown; correlationId?: unknown }, headers: Record<string, unknown>): Span | undefined {
  if (!tracer) return undefined;
  const cause = traceCarrierOf(headers);
  const span = tracer.startSpan(
    `publish ${type}`,
    { kind: SpanKind.PRODUCER, attributes: messaging('send', exchange, properties, headers['x-saga-id']) },
    cause ? parentOf(cause) : context.active(),
  );
  delete headers.tracestate;
  inject(span, headers);
  return span;
}

/** Ends a span, as failed if `error` is given. */
export function endSpan(span: Span | undefined, error?: unknown): void {
  if (!span) return;
  if (error !== undefined) failSpan(span, error);
  span.end();
}

export function failSpan(span: Span | undefined, error: unknown): void {
  if (!span) return;
  const message = error instanceof Error ? error.message : String(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: message.slice(0, 500) });
}

/** Records something that happened to a span's message (retried, dead-lettered). */
export function spanEvent(span: Span | undefined, name: string, attributes?: Attributes): void {
  span?.addEvent(name, attributes);
}

/** Runs `work` with `span` as the active span (its database statements and publishes become its children). */
export function inSpan<T>(span: Span | undefined, work: () => T): T {
  return span ? context.with(trace.setSpan(context.active(), span), work) : work();
}

/** A span for one database statement, inside a traced operation only (the timer poll's idle reads make none). */
export function startDbSpan(statement: string, andThen?: string): Span | undefined {
  if (!tracer) return undefined;
  const active = context.active();
  if (!trace.getSpan(active)) return undefined;
  const name = andThen ? `${statement} + ${andThen}` : statement;
  return tracer.startSpan(`pg ${name}`, { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'postgresql', 'db.query.summary': name } }, active);
}

/** `work`'s promise, ending the span when it settles (the promise itself when there is no span). */
export function settleSpan<T>(span: Span | undefined, work: Promise<T>): Promise<T> {
  if (!span) return work;
  return work.then(
    (result) => (span.end(), result),
    (error: unknown) => {
      endSpan(span, error);
      throw error;
    },
  );
}

/** An HTTP request's server span, child of the request's own traceparent if it sent one. */
export function startServerSpan(method: string, headers: Record<string, unknown>): { span: Span; context: Context } | undefined {
  if (!tracer) return undefined;
  const parent = propagation.extract(ROOT_CONTEXT, headers, getter);
  const span = tracer.startSpan(method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': method } }, parent);
  return { span, context: trace.setSpan(parent, span) };
}

/**
 * A span for something whose start is known only at its end (a saga step, a whole saga), under the
 * context a saga keeps in its row.
 */
export function recordSpan(name: string, parent: TraceCarrier | null | undefined, startMs: number, attributes: Attributes, error?: string): void {
  if (!tracer) return;
  const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, startTime: startMs, attributes }, parentOf(parent));
  if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error.slice(0, 500) });
  span.end();
}
