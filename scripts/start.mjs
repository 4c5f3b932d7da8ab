// `npm start`: the whole system in one command — checks RabbitMQ and PostgreSQL, creates the database,
// then starts the orchestrator and the four services (each applies its migrations; inventory seeds the
// catalog) and stays in the foreground. Ctrl-C stops everything gracefully.
//
//   npm start -- --cluster 3: first starts a RabbitMQ cluster of 3 nodes on this machine (AMQP 5701-5703,
//   management 15701-15703; Debian's rabbitmq-server) and runs on it with quorum queues; Ctrl-C removes it too
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BaseEnv, loadEnv } from '../shared/dist/config/env.js';
import { ensureDatabase, LocalRabbitCluster, ownVariable, provisionProcessRoles, SagaflowSystem } from '../shared/dist/launcher/index.js';
import { checkDependencies } from '../shared/dist/runtime/preflight.js';

const { values: options } = parseArgs({ options: { cluster: { type: 'string' } } });
const clusterNodes = options.cluster === undefined ? 0 : Number(options.cluster);
if (options.cluster !== undefined && !(Number.isInteger(clusterNodes) && clusterNodes >= 1 && clusterNodes <= 9)) {
  console.error(`Cannot start Sagaflow: --cluster takes a number of nodes from 1 to 9 (got ${options.cluster})`);
  process.exit(1);
}
let cluster = null;
if (clusterNodes) {
  cluster = new LocalRabbitCluster({ nodes: clusterNodes });
  console.log(`Starting a RabbitMQ cluster of ${clusterNodes} nodes (${cluster.nodes.map((node) => node.name).join(', ')})...`);
  try {
    await cluster.start();
  } catch (error) {
    console.error(`Cannot start Sagaflow: ${error.message}`);
    process.exit(1);
  }
  // Every process on the cluster's nodes, failing over between them, on replicated queues.
  process.env.AMQP_URL = cluster.endpoints.amqpUrls.join(',');
  process.env.QUEUE_TYPE = 'quorum';
}

// A bad setting stops here with the processes' own message (every problem by variable name), not a ZodError.
const env = loadEnv(BaseEnv);
try {
  await ensureDatabase(env.DATABASE_URL);
  await checkDependencies(env, 3_000);
} catch (error) {
  console.error(`Cannot start Sagaflow: ${error.message}`);
  await cluster?.stop();
  process.exit(1);
}

// With DATABASE_ADMIN_URL, each process runs as a role of its own (`<database>_<process>`, owning its schema
// and nothing else), made or updated here with a new password at each start; without it, as DATABASE_URL.
let ownRoles = {};
if (process.env.DATABASE_ADMIN_URL) {
  await ensureDatabase(process.env.DATABASE_ADMIN_URL);
  const { urls } = await provisionProcessRoles(process.env.DATABASE_ADMIN_URL);
  ownRoles = Object.fromEntries(Object.entries(urls).map(([name, url]) => [ownVariable(name, 'DATABASE_URL'), url]));
}

// No API keys and no JWT issuer configured: a key per role for this run, printed below, so the quick start stays two commands.
const generatedKeys =
  process.env.API_KEYS || process.env.JWT_JWKS_URL ? null : { operator: randomBytes(24).toString('base64url'), client: randomBytes(24).toString('base64url') };

const system = new SagaflowSystem({
  rootDir: fileURLToPath(new URL('..', import.meta.url)),
  env: {
    ...process.env,
    AMQP_URL: env.AMQP_URL.join(','),
    DATABASE_URL: env.DATABASE_URL,
    ...ownRoles,
    ...(generatedKeys ? { API_KEYS: `operator:${generatedKeys.operator},client:${generatedKeys.client}` } : {}),
  },
  output: 'console',
  // Like a supervisor: a process that crashes is started again.
  restartCrashed: true,
});

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log('Stopping Sagaflow...');
  await system.stop();
  await cluster?.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

try {
  await system.start();
} catch (error) {
  console.error(`Cannot start Sagaflow: ${error.message}`);
  await system.stop();
  await cluster?.stop();
  process.exit(1);
}
const keys = generatedKeys
  ? `
  API keys (this run only; set API_KEYS to choose your own):
    operator  ${generatedKeys.operator}
    client    ${generatedKeys.client}
  e.g. curl -H 'Authorization: Bearer ${generatedKeys.operator}' ${system.url('orchestrator')}/orders
`
  : '';
console.log(`
Sagaflow is up.
  Orders API        ${system.url('orchestrator')}   (POST /orders, GET /orders/:id, GET /inventory, GET /health)
  RabbitMQ UI       ${cluster ? cluster.nodes.map((node) => `http://localhost:${node.managementPort}`).join(', ') : 'http://localhost:15672'}   (queues: *.commands, orchestrator.replies, *.dlq)
${cluster ? `  RabbitMQ nodes    ${cluster.nodes.map((node) => `${node.name} (pid ${cluster.pid(node.index)})`).join(', ')}: \`kill -9\` one to see the failover
` : ''}${keys}Press Ctrl-C to stop.
`);
