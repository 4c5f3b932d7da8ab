import { randomBytes } from 'node:crypto';
import { PROCESSES } from '../launcher/processes.js';
import type { BrokerEndpoints } from '../launcher/rabbit-cluster.js';
import { ownVariable, SagaflowSystem } from '../launcher/system.js';
import { SagaflowClient } from './api-client.js';
import { createIsolatedEnvironment, freePort, type IsolatedEnvironment } from './isolated-environment.js';

export interface IsolatedSystemOptions {
  /** Names the vhost and the database (`<prefix>_<time>_<random>`). */
  prefix: string;
  /** The repository root. */
  rootDir: string;
  /** Further environment for every process (fault injection, timers, ...). */
  env?: NodeJS.ProcessEnv;
  /** One log file per process goes here; `{vhost}` is replaced by the vhost's name. */
  logDir: string;
  restartCrashed?: boolean;
  /** How many instances of each process (competing consumers; default 1). */
  instances?: number;
  /** More flags for every Node process (profiling, say). */
  nodeFlags?: string[];
  /** A cluster to run on (LocalRabbitCluster's endpoints) instead of the machine's broker. */
  broker?: BrokerEndpoints;
  /** The host name the processes reach PostgreSQL by (it must resolve to the machine's server), instead of its address. */
  databaseHost?: string;
}

export interface IsolatedSystem {
  environment: IsolatedEnvironment;
  system: SagaflowSystem;
  /** The API as an operator (API key), unless the caller configured the orchestrator's auth itself. */
  client: SagaflowClient;
  /** The API keys the system was started with (API_KEYS), by role. */
  apiKeys: { operator: string; client: string };
  logDir: string;
  /** Stops the processes, then removes the vhost and the database. */
  dispose(): Promise<void>;
}

/** The five real processes on free ports, against a vhost and a database of their own. */
export async function startIsolatedSystem(options: IsolatedSystemOptions): Promise<IsolatedSystem> {
  const environment = await createIsolatedEnvironment(options.prefix, options.broker);
  const instances = options.instances ?? 1;
  const ports = Object.fromEntries(
    await Promise.all(PROCESSES.map(async (process) => [process.name, await Promise.all(Array.from({ length: instances }, () => freePort()))] as const)),
  );
  const logDir = options.logDir.replace('{vhost}', environment.vhost);
  const apiKeys = { operator: randomBytes(24).toString('base64url'), client: randomBytes(24).toString('base64url') };
  const system = new SagaflowSystem({
    rootDir: options.rootDir,
    env: { API_KEYS: `operator:${apiKeys.operator},client:${apiKeys.client}`, ...options.env, ...ownUrls(environment, options.databaseHost) },
    ports,
    output: { logDir },
    restartCrashed: options.restartCrashed,
    instances,
    nodeFlags: options.nodeFlags,
  });
  const dispose = async () => {
    await system.stop();
    await environment.dispose();
  };
  try {
    await system.start();
  } catch (error) {
    await dispose();
    throw new Error(`${(error as Error).message} (logs in ${logDir})`);
  }
  return { environment, system, client: new SagaflowClient(system.url(), apiKeys.operator), apiKeys, logDir, dispose };
}

/** Each process logs in as its own broker user and database role (see processEnv), at `databaseHost` if given. */
function ownUrls(environment: IsolatedEnvironment, databaseHost?: string): NodeJS.ProcessEnv {
  const atHost = (url: string) => (databaseHost ? Object.assign(new URL(url), { hostname: databaseHost }).toString() : url);
  return Object.fromEntries(
    PROCESSES.flatMap(({ name }) => [
      [ownVariable(name, 'AMQP_URL'), environment.amqpUrls[name]],
      [ownVariable(name, 'DATABASE_URL'), atHost(environment.databaseUrls[name])],
    ]),
  );
}
