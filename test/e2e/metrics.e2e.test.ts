// Prometheus metrics on the shared test system: /metrics answers on every process without a token, and the
// counters move with an order (its steps, its messages, a retry, a duplicate command, a dead letter).
import { decode, encode } from '../../shared/src/messaging/codec.js';
import { EXCHANGES } from '../../shared/src/topology/topology.js';
import { eventually, type ProcessName, type Sample, sampleSum, scrape } from '../../shared/src/testkit/index.js';
import { api, newCustomer, openSuiteChannel, processUrls } from './context.js';
import { reserveCommand } from './suite-system.js';

const SERVICES = ['order', 'inventory', 'payment', 'notification'] as const;
const suite = openSuiteChannel();

const scrapeAll = async () => Object.fromEntries(await Promise.all(Object.entries(processUrls).map(async ([name, url]) => [name, await scrape(url)] as const))) as Record<ProcessName, Sample[]>;

describe('GET /metrics', () => {
  test.each(Object.keys(processUrls))('%s answers in Prometheus text format, without a token', async (name) => {
    const response = await fetch(`${processUrls[name as ProcessName]}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    // Process metrics under our prefix, every series naming its process.
    expect(text).toContain(`sagaflow_process_cpu_seconds_total{service="${name}"}`);
    expect(text).toMatch(/^# TYPE sagaflow_messages_consumed_total counter$/m);
    expect(text).toMatch(/^# TYPE sagaflow_http_requests_total counter$/m);
    // The outbox and its timers are the orchestrator's alone.
    expect(text.includes('sagaflow_outbox_backlog ')).toBe(name === 'orchestrator');
    expect(text.includes('sagaflow_timer_lag_seconds_count')).toBe(name === 'orchestrator');
  });
});

describe('the counters move with orders', () => {
  test('an order that succeeds after a retry, a duplicate of one of its commands, and a dead letter', async () => {
    // A tap on the commands exchange, to send one of the saga's commands again.
    const { queue: tap } = await suite.channel.assertQueue('', { exclusive: true, autoDelete: true });
    await suite.channel.bindQueue(tap, EXCHANGES.commands, 'notification.send');
    const before = await scrapeAll();

    const response = await api.fetch('/orders', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customerId: newCustomer(), items: [{ sku: 'SKU-MUG', quantity: 1 }], paymentMethod: 'tok_visa', faults: { 'payment.charge': { error: 1 } } }),
    });
    expect(response.status).toBe(202);
    const { orderId } = (await response.json()) as { orderId: string };
    // Without a correlation id of the caller's, the order's own is echoed.
    expect(response.headers.get('x-correlation-id')).toBe(orderId);
    const order = await api.awaitFinal(orderId);
    expect(order.status).toBe('CONFIRMED');

    // The confirmation command again (same id): the notification service answers from its inbox.
    const notify = await eventually(
      async () => {
        const message = await suite.channel.get(tap, { noAck: true });
        return message ? decode(message) : undefined;
      },
      { what: 'the saga\'s notification.send on the tap' },
    );
    expect(notify.sagaId).toBe(order.saga.id);
    const again = encode(notify, 'metrics-test');
    suite.channel.publish(EXCHANGES.commands, notify.type, again.content, again.options);
    // A message no consumer can read: dead-lettered as malformed.
    const malformed = encode(reserveCommand([{ sku: 'SKU-MUG', quantity: 1 }]), 'metrics-test');
    suite.channel.publish(EXCHANGES.commands, 'inventory.reserve', malformed.content, { ...malformed.options, contentType: 'text/plain' });

    const rise = (samples: { before: Sample[]; after: Sample[] }, name: string, labels: Record<string, string>) =>
      sampleSum(samples.after, name, labels) - sampleSum(samples.before, name, labels);
    await eventually(
      async () => {
        const after = await scrapeAll();
        const of = (process: ProcessName) => ({ before: before[process], after: after[process] });
        const orchestrator = of('orchestrator');
        const rises = {
          started: rise(orchestrator, 'sagaflow_sagas_started_total', { type: 'order' }),
          completed: rise(orchestrator, 'sagaflow_sagas_ended_total', { type: 'order', status: 'COMPLETED' }),
          sagaDurations: rise(orchestrator, 'sagaflow_saga_duration_seconds_count', { type: 'order', status: 'COMPLETED' }),
          charges: rise(orchestrator, 'sagaflow_step_duration_seconds_count', { step: 'charge-payment', action: 'invoke', outcome: 'succeeded' }),
          replies: rise(orchestrator, 'sagaflow_messages_consumed_total', { queue: 'orchestrator.replies', type: 'payment.charge.succeeded' }),
          commands: rise(orchestrator, 'sagaflow_messages_published_total', { exchange: 'sagaflow.commands', type: 'payment.charge' }),
          posts: rise(orchestrator, 'sagaflow_http_requests_total', { method: 'POST', route: '/orders', status: '202' }),
          reads: rise(orchestrator, 'sagaflow_http_requests_total', { method: 'GET', route: '/orders/:id', status: '200' }),
          retried: rise(of('payment'), 'sagaflow_messages_retried_total', { queue: 'payment.commands', type: 'payment.charge' }),
          duplicates: rise(of('notification'), 'sagaflow_inbox_duplicates_total', { type: 'notification.send' }),
          deadLettered: rise(of('inventory'), 'sagaflow_messages_dead_lettered_total', { queue: 'inventory.commands', reason: 'malformed' }),
          ...Object.fromEntries(
            SERVICES.flatMap((service) => [
              [`${service} consumed`, rise(of(service), 'sagaflow_messages_consumed_total', { queue: `${service}.commands` })],
              [`${service} replied`, rise(of(service), 'sagaflow_messages_published_total', { exchange: 'sagaflow.replies' })],
            ]),
          ),
        };
        // Thrown, so that a timeout names the counters that did not rise.
        if (!Object.values(rises).every((value) => value >= 1)) throw new Error(JSON.stringify(rises));
        return after;
      },
      { what: 'every counter to rise', timeoutMs: 10_000 },
    ).then((after) => {
      // The gauges are read on scrape: the outbox backlog is a count and an age, both defined.
      expect(sampleSum(after.orchestrator, 'sagaflow_outbox_backlog')).toBeGreaterThanOrEqual(0);
      expect(sampleSum(after.orchestrator, 'sagaflow_outbox_backlog_oldest_seconds')).toBeGreaterThanOrEqual(0);
      expect(after.orchestrator.some((sample) => sample.name === 'sagaflow_timer_lag_seconds_count')).toBe(true);
    });
  });
});
