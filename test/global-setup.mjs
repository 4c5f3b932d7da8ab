// One isolated system per test run: its own vhost and database, the five real processes on free ports.
// Everything is removed again in global-teardown.mjs. Plain ESM on the built kit (`npm test` builds first).
import { fileURLToPath } from 'node:url';
import { createIsolatedEnvironment, freePort, PROCESSES, SagaflowSystem } from '../shared/dist/testkit/index.js';

export default async function globalSetup() {
  const environment = await createIsolatedEnvironment('sagaflow_test');
  const ports = Object.fromEntries(await Promise.all(PROCESSES.map(async (process) => [process.name, await freePort()])));
  const rootDir = fileURLToPath(new URL('..', import.meta.url));
  const logDir = `${rootDir}test-logs/${environment.vhost}`;
  const system = new SagaflowSystem({
    rootDir,
    env: {
      AMQP_URL: environment.amqpUrl,
      DATABASE_URL: environment.databaseUrl,
      LOG_LEVEL: 'info',
      FAULT_INJECTION: 'true',
      // Short timers, so that timeouts and deadlines can be watched in a test.
      STEP_TIMEOUT_MS: '4000',
      STEP_RESENDS: '1',
      SAGA_DEADLINE_MS: '9000',
      COMPENSATION_ATTEMPTS: '3',
    },
    ports,
    output: { logDir },
  });
  globalThis.__sagaflow = { environment, system };
  try {
    await system.start();
  } catch (error) {
    await system.stop();
    await environment.dispose();
    throw new Error(`${error.message} (logs in ${logDir})`);
  }
  Object.assign(process.env, {
    SAGAFLOW_URL: system.url('orchestrator'),
    SAGAFLOW_VHOST: environment.vhost,
    SAGAFLOW_AMQP_URL: environment.amqpUrl,
    SAGAFLOW_DATABASE_URL: environment.databaseUrl,
    SAGAFLOW_LOG_DIR: logDir,
  });
}
