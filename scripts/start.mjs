// `npm start`: the whole system in one command — checks RabbitMQ and PostgreSQL, creates the database,
// then starts the orchestrator and the four services (each applies its migrations; inventory seeds the
// catalog) and stays in the foreground. Ctrl-C stops everything gracefully.
import { fileURLToPath } from 'node:url';
import { BaseEnv } from '../shared/dist/config/env.js';
import { ensureDatabase, SagaflowSystem } from '../shared/dist/launcher/index.js';
import { checkDependencies } from '../shared/dist/runtime/preflight.js';

const env = BaseEnv.parse(process.env);
try {
  await ensureDatabase(env.DATABASE_URL);
  await checkDependencies(env, 3_000);
} catch (error) {
  console.error(`Cannot start Sagaflow: ${error.message}`);
  process.exit(1);
}

const system = new SagaflowSystem({
  rootDir: fileURLToPath(new URL('..', import.meta.url)),
  env: { ...process.env, AMQP_URL: env.AMQP_URL, DATABASE_URL: env.DATABASE_URL },
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
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

try {
  await system.start();
} catch (error) {
  console.error(`Cannot start Sagaflow: ${error.message}`);
  await system.stop();
  process.exit(1);
}
console.log(`
Sagaflow is up.
  Orders API        ${system.url('orchestrator')}   (POST /orders, GET /orders/:id, GET /inventory, GET /health)
  RabbitMQ UI       http://localhost:15672   (queues: *.commands, orchestrator.replies, *.dlq)
Press Ctrl-C to stop.
`);
