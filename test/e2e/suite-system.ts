import amqplib, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { fileURLToPath } from 'node:url';
import { newMessageId, SCHEMA_VERSION, type Envelope } from '../../shared/src/contracts/envelope.js';
import { type IsolatedSystem, startIsolatedSystem } from '../../shared/src/testkit/index.js';

export interface SuiteSystem {
  isolated: IsolatedSystem;
  /** A confirm channel on the system's vhost, for the test to publish and read with. */
  channel: ConfirmChannel;
  /** Closes the channel's connection, then stops the system and removes its vhost and database. */
  dispose(): Promise<void>;
}

/** A system of the suite's own (processes, vhost, database), for suites that stop processes or change settings. */
export async function startSuiteSystem(
  name: string,
  env: NodeJS.ProcessEnv,
  { restartCrashed = false, nodeFlags, databaseHost }: { restartCrashed?: boolean; nodeFlags?: string[]; databaseHost?: string } = {},
): Promise<SuiteSystem> {
  const isolated = await startIsolatedSystem({
    prefix: `sagaflow_${name}`,
    rootDir: fileURLToPath(new URL('../..', import.meta.url)),
    logDir: `${process.env.SAGAFLOW_LOG_DIR}/${name}`,
    env,
    restartCrashed,
    nodeFlags,
    databaseHost,
  });
  let connection: ChannelModel | undefined;
  try {
    connection = await amqplib.connect(isolated.environment.amqpUrl);
    // A suite may stop the broker: its connection then dies, and must not take the test run with it.
    connection.on('error', () => undefined);
    const channel = await connection.createConfirmChannel();
    channel.on('error', () => undefined);
    return {
      isolated,
      channel,
      dispose: async () => {
        await Promise.race([connection!.close().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
        await isolated.dispose();
      },
    };
  } catch (error) {
    await connection?.close().catch(() => undefined);
    await isolated.dispose();
    throw error;
  }
}

/** An `inventory.reserve` command as the orchestrator would send it, for tests that publish straight to the broker. */
export function reserveCommand(items: { sku: string; quantity: number }[], payload?: unknown): Envelope {
  const orderId = newMessageId();
  return {
    messageId: newMessageId(),
    type: 'inventory.reserve',
    sagaId: newMessageId(),
    correlationId: orderId,
    causationId: '',
    schemaVersion: SCHEMA_VERSION,
    payload: payload ?? { orderId, items },
  };
}
