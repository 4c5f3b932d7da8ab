// GET /health/ready (and /health, its alias) answers 503 naming what is down, and 200 again once it is back,
// while GET /health/live stays 200: an outage must not get the process restarted.
// A second orchestrator talks to the test broker and database through TCP proxies the test can cut.
import { fileURLToPath } from 'node:url';
import { eventually, freePort, SagaflowSystem, TcpProxy } from '../../shared/src/testkit/index.js';

const amqpUrl = new URL(process.env.SAGAFLOW_AMQP_URL!);
const databaseUrl = new URL(process.env.SAGAFLOW_DATABASE_URL!);
const brokerProxy = new TcpProxy(amqpUrl.hostname, Number(amqpUrl.port || 5672));
const databaseProxy = new TcpProxy(databaseUrl.hostname, Number(databaseUrl.port || 5432));
let system: SagaflowSystem;

beforeAll(async () => {
  const throughBroker = new URL(amqpUrl);
  throughBroker.port = String(await brokerProxy.start());
  const throughDatabase = new URL(databaseUrl);
  throughDatabase.port = String(await databaseProxy.start());
  system = new SagaflowSystem({
    rootDir: fileURLToPath(new URL('../..', import.meta.url)),
    env: { AMQP_URL: throughBroker.toString(), DATABASE_URL: throughDatabase.toString(), API_KEYS: process.env.SAGAFLOW_API_KEYS },
    ports: { orchestrator: await freePort() },
    output: { logDir: `${process.env.SAGAFLOW_LOG_DIR}/health-test` },
  });
  await system.startProcess('orchestrator');
});

afterAll(async () => {
  await system.stop();
  await brokerProxy.close();
  await databaseProxy.close();
});

const health = async (path = '/health/ready') => {
  const response = await fetch(`${system.url('orchestrator')}${path}`);
  return { status: response.status, body: (await response.json()) as { status: string; error: Record<string, { status: string }> } };
};

const becomes = (status: number, down?: string) =>
  eventually(
    async () => {
      const answer = await health();
      return answer.status === status && (!down || answer.body.error[down]?.status === 'down') ? answer : undefined;
    },
    { what: `GET /health/ready to answer ${status}${down ? ` naming ${down}` : ''}` },
  );

describe('GET /health/ready, /health and /health/live', () => {
  test('ready: 503 naming rabbitmq while the broker is unreachable, 200 once it is back; live stays 200', async () => {
    await becomes(200);
    expect(await health('/health/live')).toEqual({ status: 200, body: expect.objectContaining({ status: 'ok' }) });
    brokerProxy.cut();
    const { body } = await becomes(503, 'rabbitmq');
    expect(body.error.postgresql).toBeUndefined();
    expect((await health('/health')).status).toBe(503);
    expect(await health('/health/live')).toEqual({ status: 200, body: expect.objectContaining({ status: 'ok' }) });
    brokerProxy.restore();
    await becomes(200);
    expect((await health('/health')).status).toBe(200);
  });

  test('ready: 503 naming postgresql while the database is unreachable, 200 once it is back; live stays 200', async () => {
    databaseProxy.cut();
    const { body } = await becomes(503, 'postgresql');
    expect(body.error.rabbitmq).toBeUndefined();
    expect((await health('/health/live')).status).toBe(200);
    databaseProxy.restore();
    await becomes(200);
    expect(system.isRunning('orchestrator')).toBe(true);
  });
});

describe('an orchestrator started without FAULT_INJECTION', () => {
  test('refuses an order that carries a fault plan, saying how to enable them', async () => {
    const response = await fetch(`${system.url('orchestrator')}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${process.env.SAGAFLOW_OPERATOR_KEY}` },
      body: JSON.stringify({ customerId: 'c', items: [{ sku: 'SKU-TEE', quantity: 1 }], paymentMethod: 'tok_visa', faults: { 'payment.charge': { error: 1 } } }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { errors: { field: string; message: string }[] }).errors).toEqual([
      { field: 'faults', message: 'fault plans are refused: start the system with FAULT_INJECTION=true to use them' },
    ]);
  });
});
