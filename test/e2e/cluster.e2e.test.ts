// A three-node RabbitMQ cluster on this machine, with quorum queues replicated on every node: the node that
// leads payment.commands is SIGKILLed while 200 orders are in flight. The processes fail over to another node,
// the queues elect new leaders, and every order must still settle with nothing lost, charged twice or oversold.
import { fileURLToPath } from 'node:url';
import { BROKER_DELIVERY_LIMIT, QUEUES } from '../../shared/src/topology/topology.js';
import {
  checkInvariants,
  eventually,
  type IsolatedSystem,
  LocalRabbitCluster,
  type OrderResponse,
  snapshotStock,
  startIsolatedSystem,
} from '../../shared/src/testkit/index.js';

const SKUS = ['SKU-COFFEE', 'SKU-MUG', 'SKU-TEE'];
const ORDERS = 200;
let cluster: LocalRabbitCluster;
let isolated: IsolatedSystem;

beforeAll(async () => {
  // Ports of its own (5801-5803, ...), so a chaos run's cluster (5701-) may run beside it.
  cluster = new LocalRabbitCluster({ basePort: 5800, prefix: 'sagaflow-test' });
  await cluster.start();
  isolated = await startIsolatedSystem({
    prefix: 'sagaflow_cluster',
    rootDir: fileURLToPath(new URL('../..', import.meta.url)),
    logDir: `${process.env.SAGAFLOW_LOG_DIR}/cluster`,
    env: { QUEUE_TYPE: 'quorum' },
    broker: cluster.endpoints,
  });
}, 240_000);

afterAll(async () => {
  await isolated?.dispose();
  await cluster?.stop();
}, 60_000);

const workAndRetryQueues = async () =>
  (await isolated.environment.admin.queues(isolated.environment.vhost)).filter(
    (queue) => !queue.name.endsWith('.dlq') && !queue.name.startsWith('orchestrator.answers.') && queue.name !== QUEUES.unroutable,
  );

test('every work and retry queue is a quorum queue on all three nodes, with a delivery limit and at-least-once dead-lettering', async () => {
  const queues = await workAndRetryQueues();
  expect(queues.length).toBeGreaterThan(20);
  const nodes = cluster.nodes.map((node) => node.name).sort();
  for (const queue of queues) {
    expect({ name: queue.name, type: queue.type, members: [...(queue.members ?? [])].sort() }).toEqual({ name: queue.name, type: 'quorum', members: nodes });
    expect(queue.arguments).toMatchObject({
      'x-delivery-limit': BROKER_DELIVERY_LIMIT,
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    });
  }
});

test('losing the node that leads payment.commands with 200 orders in flight loses nothing and does nothing twice', async () => {
  const { client, environment } = isolated;
  const before = await snapshotStock(client, SKUS);
  const paymentCommands = QUEUES.commandsOf('payment');
  const leader = await eventually(async () => {
    const name = (await environment.admin.queue(environment.vhost, paymentCommands)).leader;
    if (!name) throw new Error('payment.commands has no leader yet');
    return cluster.nodeNamed(name)!;
  });

  const orderIds = await Promise.all(
    Array.from({ length: ORDERS }, (_, index) =>
      client.submit({
        customerId: `cluster-${index}`,
        items: [{ sku: SKUS[index % SKUS.length], quantity: 1 + (index % 2) }],
        paymentMethod: index % 10 === 0 ? 'tok_chargeDeclined' : 'tok_visa',
      }),
    ),
  );
  const pending = await client.get<{ orders: unknown[] }>('/orders?status=PENDING&limit=100');
  expect(pending.orders.length).toBeGreaterThan(0); // the loss really hits sagas in flight

  await cluster.killNode(leader.index);
  const newLeader = await eventually(
    async () => {
      const name = (await environment.admin.queue(environment.vhost, paymentCommands)).leader;
      if (!name || name === leader.name) throw new Error(`payment.commands is still led by ${name}`);
      return name;
    },
    { timeoutMs: 60_000, what: 'a new leader of payment.commands' },
  );
  expect(cluster.nodes.map((node) => node.name)).toContain(newLeader);

  const orders: OrderResponse[] = [];
  for (const orderId of orderIds) orders.push(await client.awaitFinal(orderId, 180_000));
  const failed = (await checkInvariants(client, orders, before)).filter((result) => !result.pass);
  expect(failed).toEqual([]);
  expect(orders.filter((order) => order.status === 'CONFIRMED').length).toBeGreaterThan(ORDERS / 2);
  // Nothing needed a person: a node loss is not a failure of any message.
  expect(await client.deadLetters()).toEqual([]);

  // The node comes back and takes its replicas again.
  await cluster.startNode(leader.index);
  await eventually(
    async () => {
      const queue = await environment.admin.queue(environment.vhost, paymentCommands);
      if (!queue.online?.includes(leader.name)) throw new Error(`${leader.name} is not back among ${queue.online?.join(', ')}`);
      return true;
    },
    { timeoutMs: 60_000, what: `${leader.name} to hold its replica again` },
  );
}, 420_000);
