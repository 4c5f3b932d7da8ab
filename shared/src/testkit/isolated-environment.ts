import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { dropDatabase, ensureDatabase } from '../launcher/database.js';
import { BrokerAdmin } from './broker-admin.js';

export interface IsolatedEnvironment {
  vhost: string;
  amqpUrl: string;
  databaseUrl: string;
  dispose(): Promise<void>;
}

/**
 * A vhost and a database of their own, so a test run shares nothing with a running system or another
 * run. `dispose()` removes both.
 */
export async function createIsolatedEnvironment(prefix = 'sagaflow_test'): Promise<IsolatedEnvironment> {
  const name = `${prefix}_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = new BrokerAdmin();
  const brokerUrl = new URL(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
  brokerUrl.pathname = `/${encodeURIComponent(name)}`;
  const databaseUrl = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  databaseUrl.pathname = `/${name}`;

  await admin.createVhost(name, decodeURIComponent(brokerUrl.username) || 'guest');
  await ensureDatabase(databaseUrl.toString());
  return {
    vhost: name,
    amqpUrl: brokerUrl.toString(),
    databaseUrl: databaseUrl.toString(),
    dispose: async () => {
      await admin.deleteVhost(name);
      await dropDatabase(databaseUrl.toString());
    },
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
