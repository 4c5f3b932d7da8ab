import amqplib from 'amqplib';
import pg from 'pg';
import { redact } from '../messaging/connection.js';

export class DependencyUnreachableError extends Error {}

/**
 * Checks that RabbitMQ and PostgreSQL answer, retrying until `timeoutMs`, and throws an error that names
 * the missing piece and how to start it.
 */
export async function checkDependencies(env: { AMQP_URL: string[]; DATABASE_URL: string }, timeoutMs = 10_000): Promise<void> {
  // One node of a cluster is enough: the process fails over to the others.
  await retry(timeoutMs, async () => {
    const problems: string[] = [];
    for (const url of env.AMQP_URL) {
      try {
        await (await amqplib.connect(url)).close();
        return;
      } catch (error) {
        problems.push(`${redact(url)} (${(error as Error).message})`);
      }
    }
    throw new DependencyUnreachableError(`RabbitMQ is not reachable at ${problems.join(', ')}. Start it (rabbitmq-server -detached) or set AMQP_URL.`);
  });
  await retry(timeoutMs, async () => {
    const client = new pg.Client({ connectionString: env.DATABASE_URL });
    try {
      await client.connect();
      await client.query('select 1');
    } catch (error) {
      throw new DependencyUnreachableError(
        `PostgreSQL is not reachable at ${redact(env.DATABASE_URL)} (${(error as Error).message}). Start it or set DATABASE_URL.`,
      );
    } finally {
      await client.end().catch(() => undefined);
    }
  });
}

async function retry(timeoutMs: number, attempt: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}
