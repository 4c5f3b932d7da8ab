// Scale-out: two instances of every process side by side, as competing consumers on the same queues. Half-way
// through a load of orders, the second instance of every process is SIGKILLed: the first takes over what
// the dead one held (unacked messages come back, commands it committed but never saw confirmed are sent
// again by the timer poll, its timers are in PostgreSQL). No order may be lost, charged twice or oversold.
import { fileURLToPath } from 'node:url';
import {
  BrokerAdmin,
  checkInvariants,
  eventually,
  type IsolatedSystem,
  PROCESSES,
  SagaflowClient,
  snapshotStock,
  startIsolatedSystem,
} from '../../shared/src/testkit/index.js';

let isolated: IsolatedSystem;

beforeAll(async () => {
  isolated = await startIsolatedSystem({
    prefix: 'sagaflow_scale',
    rootDir: fileURLToPath(new URL('../..', import.meta.url)),
    logDir: `${process.env.SAGAFLOW_LOG_DIR}/scale-out`,
    instances: 2,
  });
}, 120_000);

afterAll(async () => {
  await isolated?.dispose();
});

const WORK_QUEUES = ['order.commands', 'inventory.commands', 'payment.commands', 'notification.commands', 'orchestrator.replies'];

test('two instances of each process share the work; killing one of each loses nothing and duplicates nothing', async () => {
  const { system, environment } = isolated;
  const [first, second] = system.urls().map((url) => new SagaflowClient(url, isolated.apiKeys.operator));
  const admin = new BrokerAdmin();
  // The management API's figures lag a little behind a fresh start.
  const consumers = () => Promise.all(WORK_QUEUES.map(async (queue) => (await admin.queue(environment.vhost, queue)).consumers));
  await eventually(async () => (await consumers()).every((count) => count === 2), { timeoutMs: 20_000, what: 'two consumers on every work queue' });

  const skus = ['SKU-COFFEE', 'SKU-MUG'];
  const before = await snapshotStock(first, skus);
  const submit = (client: SagaflowClient, index: number) =>
    client.submit({
      customerId: `scale-${index}`,
      items: [{ sku: skus[index % skus.length], quantity: 1 + (index % 3) }],
      paymentMethod: index % 10 === 0 ? 'tok_chargeDeclined' : 'tok_visa',
    });

  // First half: orders go to both orchestrators, and each queue has two consumers.
  const orderIds: string[] = [];
  for (let batch = 0; batch < 6; batch++) {
    orderIds.push(...(await Promise.all(Array.from({ length: 10 }, (_, offset) => submit(offset % 2 ? second : first, batch * 10 + offset)))));
  }
  // Mid-flight, the second instance of every process dies without warning.
  await Promise.all(PROCESSES.map(({ name }) => system.kill(name, 'SIGKILL', 2)));
  for (let batch = 6; batch < 12; batch++) {
    orderIds.push(...(await Promise.all(Array.from({ length: 10 }, (_, offset) => submit(first, batch * 10 + offset)))));
  }

  const orders = await Promise.all(orderIds.map((orderId) => first.awaitFinal(orderId, 60_000)));
  const declined = (orderId: string) => orderIds.indexOf(orderId) % 10 === 0;
  expect(orders.filter((order) => order.status !== (declined(order.orderId) ? 'CANCELLED' : 'CONFIRMED')).map((order) => order.orderId)).toEqual([]);
  expect((await checkInvariants(first, orders, before)).filter((result) => !result.pass)).toEqual([]);
}, 180_000);
