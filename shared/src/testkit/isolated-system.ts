import { PROCESSES } from '../launcher/processes.js';
import { SagaflowSystem } from '../launcher/system.js';
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
}

export interface IsolatedSystem {
  environment: IsolatedEnvironment;
  system: SagaflowSystem;
  client: SagaflowClient;
  logDir: string;
  /** Stops the processes, then removes the vhost and the database. */
  dispose(): Promise<void>;
}

/** The five real processes on free ports, against a vhost and a database of their own. */
export async function startIsolatedSystem(options: IsolatedSystemOptions): Promise<IsolatedSystem> {
  const environment = await createIsolatedEnvironment(options.prefix);
  const instances = options.instances ?? 1;
  const ports = Object.fromEntries(
    await Promise.all(PROCESSES.map(async (process) => [process.name, await Promise.all(Array.from({ length: instances }, () => freePort()))] as const)),
  );
  const logDir = options.logDir.replace('{vhost}', environment.vhost);
  const system = new SagaflowSystem({
    rootDir: options.rootDir,
    env: { ...options.env, AMQP_URL: environment.amqpUrl, DATABASE_URL: environment.databaseUrl },
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
  return { environment, system, client: new SagaflowClient(system.url()), logDir, dispose };
}
