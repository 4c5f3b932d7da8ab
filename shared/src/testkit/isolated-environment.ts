import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { dropDatabase, dropDatabaseRoles, ensureDatabase, processRoles, provisionProcessRoles, withCredentials } from '../launcher/database.js';
import { PROCESSES, type ProcessName } from '../launcher/processes.js';
import type { BrokerEndpoints } from '../launcher/rabbit-cluster.js';
import { brokerPermissions } from '../topology/access.js';
import { buildTopology } from '../topology/topology.js';
import { BrokerAdmin } from './broker-admin.js';

export interface IsolatedEnvironment {
  vhost: string;
  /** As the admin (guest: every right on the vhost), for tests and tools that look behind the processes (a cluster's first node). */
  amqpUrl: string;
  /** The management API of the broker (every node of a cluster, tried in turn). */
  admin: BrokerAdmin;
  /** As the superuser. */
  databaseUrl: string;
  /** Each process's own broker user (`<vhost>_<process>`, only the rights it needs) and random password; a cluster's nodes as a list. */
  amqpUrls: Record<ProcessName, string>;
  /** Each process's own database role (`<database>_<process>`, its schema only) and random password. */
  databaseUrls: Record<ProcessName, string>;
  dispose(): Promise<void>;
}

/**
 * A vhost and a database of their own, with a broker user and a database role per process, so a test run
 * shares nothing with a running system or another run, and proves that those rights are enough.
 * `dispose()` removes them all. On the machine's broker (AMQP_URL, RABBITMQ_MANAGEMENT_URL), or a cluster's.
 */
export async function createIsolatedEnvironment(prefix = 'sagaflow_test', broker?: BrokerEndpoints): Promise<IsolatedEnvironment> {
  const name = `${prefix}_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = new BrokerAdmin(broker?.managementUrls);
  const brokerUrls = (broker?.amqpUrls ?? [process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672']).map((text) => {
    const url = new URL(text);
    url.pathname = `/${encodeURIComponent(name)}`;
    return url;
  });
  const brokerUrl = brokerUrls[0];
  const databaseUrl = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  databaseUrl.pathname = `/${name}`;
  const users = PROCESSES.map(({ name: process }) => ({ process, user: `${name}_${process}`, password: randomBytes(18).toString('base64url') }));
  let databaseUrls = {} as Record<ProcessName, string>;

  const dispose = async () => {
    await admin.deleteVhost(name);
    await Promise.all(users.map(({ user }) => admin.deleteUser(user)));
    await dropDatabase(databaseUrl.toString());
    // Roles belong to the cluster, not the database: they go once it is gone.
    await dropDatabaseRoles(databaseUrl.toString(), processRoles(name).map(({ role }) => role));
  };
  try {
    await admin.createVhost(name, decodeURIComponent(brokerUrl.username) || 'guest');
    const topology = buildTopology();
    for (const { process, user, password } of users) await admin.createUser(name, user, password, brokerPermissions(process, topology));
    await ensureDatabase(databaseUrl.toString());
    ({ urls: databaseUrls } = await provisionProcessRoles(databaseUrl.toString()));
  } catch (error) {
    await dispose().catch(() => undefined);
    throw error;
  }
  return {
    vhost: name,
    amqpUrl: brokerUrl.toString(),
    admin,
    databaseUrl: databaseUrl.toString(),
    amqpUrls: Object.fromEntries(
      users.map(({ process, user, password }) => [process, brokerUrls.map((url) => withCredentials(url.toString(), user, password)).join(',')]),
    ) as Record<ProcessName, string>,
    databaseUrls,
    dispose,
  };
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
