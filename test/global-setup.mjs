// One isolated system per test run: its own vhost and database, the five real processes on free ports.
// Everything is removed again in global-teardown.mjs. Plain ESM on the built kit (`npm test` builds first).
import { fileURLToPath } from 'node:url';
import { PROCESSES, startIsolatedSystem } from '../shared/dist/testkit/index.js';

export default async function globalSetup() {
  const rootDir = fileURLToPath(new URL('..', import.meta.url));
  const isolated = await startIsolatedSystem({
    prefix: 'sagaflow_test',
    rootDir,
    logDir: `${rootDir}test-logs/{vhost}`,
    env: {
      LOG_LEVEL: 'info',
      FAULT_INJECTION: 'true',
      // Short timers, so that work timeouts and deadlines can be watched in a test.
      STEP_TIMEOUT_MS: '4000',
      SAGA_DEADLINE_MS: '9000',
      COMPENSATION_ATTEMPTS: '3',
    },
  });
  globalThis.__sagaflow = isolated;
  Object.assign(process.env, {
    SAGAFLOW_URL: isolated.system.url('orchestrator'),
    // Every process's HTTP port (JSON by process name): /health and /metrics.
    SAGAFLOW_URLS: JSON.stringify(Object.fromEntries(PROCESSES.map(({ name }) => [name, isolated.system.url(name)]))),
    SAGAFLOW_VHOST: isolated.environment.vhost,
    SAGAFLOW_AMQP_URL: isolated.environment.amqpUrl,
    SAGAFLOW_DATABASE_URL: isolated.environment.databaseUrl,
    // Each process's own broker user and database role (JSON by process name), for the permission tests.
    SAGAFLOW_PROCESS_AMQP_URLS: JSON.stringify(isolated.environment.amqpUrls),
    SAGAFLOW_PROCESS_DATABASE_URLS: JSON.stringify(isolated.environment.databaseUrls),
    SAGAFLOW_LOG_DIR: isolated.logDir,
    SAGAFLOW_API_KEYS: `operator:${isolated.apiKeys.operator},client:${isolated.apiKeys.client}`,
    SAGAFLOW_OPERATOR_KEY: isolated.apiKeys.operator,
    SAGAFLOW_CLIENT_KEY: isolated.apiKeys.client,
  });
}
