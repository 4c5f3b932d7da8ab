import { MESSAGES_CONSUMED, PerType, renderMetrics, typeLabel } from './metrics.js';
import { traceCarrierOf, traceIdOf, tracingWanted } from './tracing.js';

describe('tracing is off unless configured', () => {
  test.each([
    [{}, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: '' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, true],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }, true],
    [{ OTEL_TRACES_EXPORTER: 'otlp' }, true],
    [{ OTEL_TRACES_EXPORTER: 'console' }, true],
    [{ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, false],
    [{ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }, false],
  ])('%j: %s', (env, wanted) => {
    expect(tracingWanted(env as NodeJS.ProcessEnv)).toBe(wanted);
  });
});

describe('trace context from headers', () => {
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

  test('a well-formed traceparent (and tracestate) is taken; its trace id names the log lines', () => {
    expect(traceCarrierOf({ traceparent, tracestate: 'vendor=a' })).toEqual({ traceparent, tracestate: 'vendor=a' });
    expect(traceIdOf({ traceparent })).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  test('anything else is ignored: it travels no further', () => {
    for (const bad of ['', 'x'.repeat(55), `${traceparent}-extra`, traceparent.toUpperCase(), 42, null]) {
      expect(traceCarrierOf({ traceparent: bad })).toBeUndefined();
      expect(traceIdOf({ traceparent: bad })).toBeUndefined();
    }
    expect(traceCarrierOf({ traceparent, tracestate: 'x'.repeat(600) })).toEqual({ traceparent });
    expect(traceCarrierOf(undefined)).toBeUndefined();
  });
});

describe('metric labels stay bounded', () => {
  test('a message type the contracts do not define is counted as unknown', () => {
    expect(typeLabel('inventory.reserve')).toBe('inventory.reserve');
    expect(typeLabel('inventory.reserve.failed')).toBe('inventory.reserve.failed');
    expect(typeLabel('made.up')).toBe('unknown');
    expect(typeLabel(undefined)).toBe('unknown');
  });

  test('bound counters are rendered on scrape, strangers together', async () => {
    const consumed = new PerType((type) => MESSAGES_CONSUMED.bind('test.queue', type));
    consumed.of('payment.charge').inc();
    consumed.of('payment.charge').inc(2);
    for (let stranger = 0; stranger < 100; stranger++) consumed.of(`stranger.${stranger}`).inc();
    const text = await renderMetrics();
    expect(text).toContain('sagaflow_messages_consumed_total{queue="test.queue",type="payment.charge"} 3');
    expect(text).toContain('sagaflow_messages_consumed_total{queue="test.queue",type="unknown"} 100');
    expect(text).not.toContain('stranger');
  });
});
