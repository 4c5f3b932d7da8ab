// OpenTelemetry tracing across the five processes: a system of its own exports to an OTLP/HTTP receiver in
// this test, and one order makes one trace: the caller's traceparent, the HTTP request, every command and
// reply (published and processed), each step, the saga, and a command the timer poll sent again from the
// trace kept in the saga's row. The order's log lines name that trace.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from '../../shared/src/testkit/index.js';
import { newCustomer } from './context.js';
import { startSuiteSystem, type SuiteSystem } from './suite-system.js';

interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  attributes: Record<string, unknown>;
}

/** An OTLP/HTTP receiver (JSON encoding): every span it is sent, with the service that sent it. */
function otlpReceiver(): { spans: ReceivedSpan[]; server: Server } {
  const spans: ReceivedSpan[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      if (request.url === '/v1/traces') {
        for (const { resource, scopeSpans } of JSON.parse(body).resourceSpans ?? []) {
          const service = resource.attributes.find((attribute: { key: string }) => attribute.key === 'service.name')?.value.stringValue;
          for (const { spans: received } of scopeSpans) {
            for (const span of received) {
              const attributes = Object.fromEntries(span.attributes.map(({ key, value }: { key: string; value: Record<string, unknown> }) => [key, Object.values(value)[0]]));
              spans.push({ service, traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId ?? '', name: span.name, attributes });
            }
          }
        }
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return { spans, server };
}

const hex = (bytes: number) => Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (byte) => byte.toString(16).padStart(2, '0')).join('');

let system: SuiteSystem;
const receiver = otlpReceiver();
beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
  system = await startSuiteSystem('tracing', {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
    FAULT_INJECTION: 'true',
    // The hung notification's first attempt is given up after this long; the notification service retries it.
    STEP_TIMEOUT_MS: '1500',
  });
}, 120_000);
afterAll(async () => {
  await system?.dispose();
  receiver.server.close();
});

test('one order is one trace across all five processes, from the caller\'s traceparent on', async () => {
  const traceId = hex(16);
  const callerSpan = hex(8);
  const response = await system.isolated.client.fetch('/orders', {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpan}-01`, 'x-correlation-id': 'trace-test-1' },
    // The first attempt at the confirmation hangs: the service retries it, through its delay queue, in the same trace.
    body: JSON.stringify({ customerId: newCustomer(), items: [{ sku: 'SKU-TEE', quantity: 1 }], paymentMethod: 'tok_visa', faults: { 'notification.send': { 'no-reply': 1 } } }),
  });
  expect(response.status).toBe(202);
  expect(response.headers.get('x-correlation-id')).toBe('trace-test-1');
  const { orderId } = (await response.json()) as { orderId: string };
  const order = await system.isolated.client.awaitFinal(orderId);
  expect(order.status).toBe('CONFIRMED');
  expect(order.saga.steps.find((step) => step.name === 'notify')?.attempts).toBe(2);

  const names = (service: string) => receiver.spans.filter((span) => span.traceId === traceId && span.service === service).map((span) => span.name);
  await eventually(
    async () => {
      const orchestrator = names('sagaflow-orchestrator');
      const seen = [
        orchestrator.includes('POST /orders'),
        orchestrator.includes('saga order'),
        orchestrator.filter((name) => name === 'publish notification.send').length === 1,
        names('sagaflow-notification').filter((name) => name === 'process notification.send').length === 2,
        ...['order', 'inventory', 'payment', 'notification'].map((service) => names(`sagaflow-${service}`).some((name) => name.startsWith('publish '))),
      ];
      if (!seen.every(Boolean)) throw new Error(`spans so far: ${JSON.stringify(receiver.spans.map(({ service, name }) => `${service}: ${name}`))}`);
      return true;
    },
    { what: 'the order\'s spans from every process', timeoutMs: 15_000 },
  );

  const trace = receiver.spans.filter((span) => span.traceId === traceId);
  // Nothing of this order went into another trace.
  const sagaSpans = receiver.spans.filter((span) => span.attributes['sagaflow.saga.id'] === order.saga.id);
  expect(new Set(sagaSpans.map((span) => span.traceId))).toEqual(new Set([traceId]));
  // Every span hangs off another span of the trace, or off the caller's.
  const ids = new Set([...trace.map((span) => span.spanId), callerSpan]);
  expect(trace.filter((span) => !ids.has(span.parentSpanId)).map((span) => `${span.service}: ${span.name}`)).toEqual([]);

  expect(names('sagaflow-orchestrator')).toEqual(
    expect.arrayContaining([
      'pg saga.insert',
      'publish order.create',
      'process order.create.succeeded',
      'pg saga.save',
      'step create-order',
      'step reserve-inventory',
      'step charge-payment',
      'step confirm-order',
      'step notify',
    ]),
  );
  for (const [service, command] of [
    ['order', 'order.create'],
    ['inventory', 'inventory.reserve'],
    ['payment', 'payment.charge'],
    ['notification', 'notification.send'],
  ]) {
    expect(names(`sagaflow-${service}`)).toEqual(expect.arrayContaining([`process ${command}`, `publish ${command}.succeeded`]));
  }
  // A command's processing is the child of its publishing, in the other process.
  const published = trace.find((span) => span.name === 'publish payment.charge')!;
  expect(trace.find((span) => span.name === 'process payment.charge')).toMatchObject({ service: 'sagaflow-payment', parentSpanId: published.spanId });

  // The order's log lines name its trace, saga and correlation id.
  await eventually(
    async () => {
      const lines = readFileSync(join(system.isolated.logDir, 'orchestrator.log'), 'utf8').split('\n').filter((line) => line.includes('"saga ended"'));
      return lines.some((line) => line.includes(`"traceId":"${traceId}"`) && line.includes(`"sagaId":"${order.saga.id}"`) && line.includes('"correlationId":"trace-test-1"'));
    },
    { what: 'the saga-ended log line with its trace id' },
  );
});
