// Any process can die between any two lines, connections drop, PostgreSQL backends get killed: every saga
// must still finish, with nothing lost, charged twice or oversold. This suite runs its own system (own vhost
// and database) because it kills processes.
import amqplib from 'amqplib';
import { fileURLToPath } from 'node:url';
import { QUEUES } from '../../shared/src/topology/topology.js';
import {
  BrokerAdmin,
  checkInvariants,
  eventually,
  type IsolatedSystem,
  type OrderResponse,
  PROCESSES,
  type ProcessName,
  SagaflowClient,
  SagaflowSystem,
  snapshotStock,
  startIsolatedSystem,
  terminateBackends,
} from '../../shared/src/testkit/index.js';

const SKUS = ['SKU-COFFEE', 'SKU-MUG', 'SKU-TEE'];
const ORDERS = 200;
let isolated: IsolatedSystem;
let environment: IsolatedSystem['environment'];
let system: SagaflowSystem;
let client: SagaflowClient;

beforeAll(async () => {
  isolated = await startIsolatedSystem({
    prefix: 'sagaflow_crash',
    rootDir: fileURLToPath(new URL('../..', import.meta.url)),
    logDir: `${process.env.SAGAFLOW_LOG_DIR}/crash-recovery`,
    // Fault plans for the retry-queue and hung-attempt cases; a hung attempt is given up after 5 s. Quorum
    // queues, as a cluster runs them: the other suites run classic.
    env: { FAULT_INJECTION: 'true', STEP_TIMEOUT_MS: '5000', QUEUE_TYPE: 'quorum' },
  });
  ({ environment, system, client } = isolated);
}, 120_000);

afterAll(async () => {
  await isolated?.dispose();
});

test('this system runs on quorum queues, the dead-letter queues too', async () => {
  // An orchestrator's answers queue is exclusive to its connection, so classic, whatever QUEUE_TYPE says.
  const queues = (await new BrokerAdmin().queues(environment.vhost)).filter((queue) => !queue.name.startsWith('orchestrator.answers.'));
  expect(queues.length).toBeGreaterThan(20);
  expect(queues.filter((queue) => queue.type !== 'quorum').map((queue) => queue.name)).toEqual([]);
});

let customer = 0;
/** 200 orders at once: 1–2 units of the three stocked SKUs, one in ten with a card that is declined. */
async function submitBatch(): Promise<string[]> {
  return Promise.all(
    Array.from({ length: ORDERS }, (_, index) =>
      client.submit({
        customerId: `crash-${++customer}`,
        items: [{ sku: SKUS[index % SKUS.length], quantity: 1 + (index % 2) }],
        paymentMethod: index % 10 === 0 ? 'tok_chargeDeclined' : 'tok_visa',
      }),
    ),
  );
}

async function awaitAll(orderIds: string[]): Promise<OrderResponse[]> {
  const orders: OrderResponse[] = [];
  for (const orderId of orderIds) orders.push(await client.awaitFinal(orderId, 120_000));
  return orders;
}

/** Runs a batch, does `disrupt` while it is in flight, then checks every invariant. */
async function survives(disrupt: () => Promise<void>): Promise<void> {
  const before = await snapshotStock(client, SKUS);
  const orderIds = await submitBatch();
  const pending = await client.get<{ orders: unknown[] }>('/orders?status=PENDING&limit=100');
  expect(pending.orders.length).toBeGreaterThan(0); // the disruption really hits sagas in flight
  await disrupt();
  const orders = await awaitAll(orderIds);
  const failed = (await checkInvariants(client, orders, before)).filter((result) => !result.pass);
  expect(failed).toEqual([]);
  expect(orders.filter((order) => order.status === 'CONFIRMED').length).toBeGreaterThanOrEqual(ORDERS * 0.9 - 1);
}

describe('crash recovery', () => {
  test.each(PROCESSES.map((process) => process.name))(
    'SIGKILL of %s in the middle of 200 orders, then restart: every order settles, invariants hold',
    async (name: ProcessName) => {
      await survives(() => system.restart(name));
    },
    180_000,
  );

  test.each(PROCESSES.map((process) => process.name))(
    'SIGTERM of %s in the middle of 200 orders: it finishes what it holds and exits 0; after restart invariants hold',
    async (name: ProcessName) => {
      await survives(async () => {
        expect(await system.kill(name, 'SIGTERM')).toBe(0);
        await system.startProcess(name);
      });
    },
    180_000,
  );

  test('SIGKILL of the payment service while charges wait in its retry queues: nothing lost, each charged once', async () => {
    const before = await snapshotStock(client, SKUS);
    const orderIds = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        client.submit({
          customerId: `retry-${index}`,
          items: [{ sku: SKUS[index % SKUS.length], quantity: 1 }],
          paymentMethod: 'tok_visa',
          // Three failures: the third retry waits 4 s in payment.commands.retry.5s.
          faults: { 'payment.charge': { error: 3 } },
        }),
      ),
    );
    const connection = await amqplib.connect(environment.amqpUrl);
    try {
      const channel = await connection.createChannel();
      await eventually(async () => ((await channel.checkQueue(QUEUES.retryOf('payment.commands', 5_000))).messageCount > 0 ? true : undefined), {
        what: 'charges waiting in payment.commands.retry.5s',
        intervalMs: 20,
      });
    } finally {
      await connection.close();
    }
    await system.restart('payment');
    const orders = await awaitAll(orderIds);
    expect(orders.every((order) => order.status === 'CONFIRMED')).toBe(true);
    expect((await checkInvariants(client, orders, before)).filter((result) => !result.pass)).toEqual([]);
  }, 180_000);

  test('SIGKILL of the orchestrator while the participants still work: after its restart it takes their replies and the sagas finish', async () => {
    const before = await snapshotStock(client, SKUS);
    // The first attempt at each charge hangs until the work timeout (5 s); the payment service retries it.
    const orderIds = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        client.submit({
          customerId: `timer-${index}`,
          items: [{ sku: SKUS[index % SKUS.length], quantity: 1 }],
          paymentMethod: 'tok_visa',
          faults: { 'payment.charge': { 'no-reply': 1 } },
        }),
      ),
    );
    await eventually(async () => ((await client.order(orderIds[19]))!.saga.steps.find((step) => step.name === 'charge-payment')?.status === 'RUNNING' ? true : undefined), {
      what: 'the charges to be sent',
    });
    await system.restart('orchestrator');
    const orders = await awaitAll(orderIds);
    expect(orders.every((order) => order.status === 'CONFIRMED')).toBe(true);
    // Nothing was sent again because a reply was late (only a command whose publish was never confirmed may be).
    const resent = orders.flatMap((order) => order.saga.history.filter((event) => event.kind === 'command-sent' && event.messageType === 'payment.charge').slice(1));
    expect(resent.every((event) => /not confirmed/.test(event.detail ?? ''))).toBe(true);
    expect((await checkInvariants(client, orders, before)).filter((result) => !result.pass)).toEqual([]);
  }, 180_000);

  test('broker connections closed mid-run: processes reconnect by themselves, invariants hold', async () => {
    const admin = new BrokerAdmin();
    // One connection per process; a process restarted by an earlier test may take a moment to be listed.
    await eventually(async () => ((await admin.connections(environment.vhost)).length >= PROCESSES.length ? true : undefined), {
      what: 'every process to be listed as connected',
    });
    await survives(async () => {
      expect(await admin.closeConnections(environment.vhost)).toBeGreaterThanOrEqual(PROCESSES.length);
    });
  }, 180_000);

  test('PostgreSQL backends terminated mid-run: processes reconnect by themselves, invariants hold', async () => {
    await survives(async () => {
      expect(await terminateBackends(environment.databaseUrl)).toBeGreaterThan(0);
    });
    for (const { name } of PROCESSES) expect(system.isRunning(name)).toBe(true);
  }, 180_000);
});
