import 'reflect-metadata';
import { MikroORM } from '@mikro-orm/postgresql';
import type { INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import pg from 'pg';
import { Logger as NestPinoLogger } from 'nestjs-pino';
import type { Logger } from 'pino';
import type { BaseEnv } from '../config/env.js';
import type { ServiceName } from '../contracts/define.js';
import { ParticipantServer } from '../participant/participant.server.js';
import { RethrowRpcErrors } from '../participant/rethrow-rpc-errors.filter.js';
import { Database } from '../database/database.js';
import { httpObservability } from '../observability/http.js';
import { startTracing, stopTracing } from '../observability/tracing.js';
import { Broker } from './broker.js';
import { checkDependencies } from './preflight.js';

export interface ProcessOptions {
  module: Type<unknown>;
  env: BaseEnv & { PORT: number };
  logger: Logger;
  /** The schema the process owns: created if missing, then migrated. */
  schema: string;
  /** Runs after migrations, before the process takes messages or requests (e.g. seeding). */
  onMigrated?: (app: INestApplication) => Promise<void>;
  /** Attaches transports (before listening). */
  beforeListen?: (app: INestApplication) => Promise<void>;
}

/** Starts a Sagaflow process: check dependencies, migrate its schema, start transports, listen on PORT. */
export async function startProcess(options: ProcessOptions): Promise<INestApplication> {
  const { env, logger } = options;
  try {
    await checkDependencies(env, 30_000);
  } catch (error) {
    logger.fatal((error as Error).message);
    process.exit(1);
  }
  // Before anything that could make a span (off unless the OTEL_* variables ask for it).
  await startTracing(options.schema);
  const app = await NestFactory.create(options.module, { bufferLogs: true });
  app.useLogger(app.get(NestPinoLogger));
  app.use(httpObservability());
  stopGracefullyOnSignal(app, logger);
  const orm = app.get(MikroORM);
  // Instances of one process may start together (scale-out): one migrates and seeds, the others wait for it.
  await whileHoldingLock(env.DATABASE_URL, `sagaflow:migrate:${options.schema}`, async () => {
    // With a role of its own the schema is the admin's to create (the role may not create one): only create it if missing.
    const connection = orm.em.getConnection();
    const [exists] = await connection.execute('select 1 from pg_namespace where nspname = ?', [options.schema]);
    if (!exists) await connection.execute(`create schema if not exists "${options.schema}"`);
    const applied = await orm.migrator.up();
    if (applied.length) logger.info({ migrations: applied.map((migration) => migration.name) }, 'migrations applied');
    await options.onMigrated?.(app);
  });
  await options.beforeListen?.(app);
  await app.listen(env.PORT);
  boundHttpWaits(app);
  logger.info({ port: env.PORT }, 'ready');
  return app;
}

/**
 * Every wait on HTTP is bounded too: a client that sends its headers or body slowly, or keeps an idle
 * connection, is cut off, so that slow clients cannot hold the server's sockets.
 */
function boundHttpWaits(app: INestApplication): void {
  const server = app.getHttpServer() as import('node:http').Server;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
}

/** Runs `work` under a PostgreSQL advisory lock (session-level, on a connection of its own). */
async function whileHoldingLock(databaseUrl: string, name: string, work: () => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock(hashtext($1))', [name]);
    await work();
  } finally {
    await client.end(); // ending the session releases the lock
  }
}

/** How long a process may take to stop on SIGTERM; a supervisor must wait longer before it kills (compose does). */
export const SHUTDOWN_GRACE_MS = 25_000;

/**
 * SIGTERM / SIGINT: stop taking messages and requests, finish what is in hand, flush the outbox, close
 * connections, exit 0. A shutdown that hangs past the grace period exits 1.
 */
function stopGracefullyOnSignal(app: INestApplication, logger: Logger, graceMs = SHUTDOWN_GRACE_MS): void {
  const stop = async (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error({ graceMs }, 'shutdown took too long; exiting');
      process.exit(1);
    }, graceMs).unref();
    try {
      await app.close();
      await stopTracing();
      logger.info('stopped');
      process.exit(0);
    } catch (error) {
      logger.error({ err: (error as Error).message }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** Starts a saga participant: a Nest app whose `@MessagePattern` handlers take the service's commands and queries. */
export function startParticipant(options: ProcessOptions & { service: ServiceName }): Promise<INestApplication> {
  return startProcess({
    ...options,
    beforeListen: async (app) => {
      const server = new ParticipantServer({
        service: options.service,
        broker: app.get(Broker),
        db: app.get(Database),
        em: app.get(MikroORM).em,
        logger: options.logger,
        faultInjection: options.env.FAULT_INJECTION,
        slowHandlerMs: options.env.SLOW_HANDLER_MS,
      });
      app.useGlobalFilters(new RethrowRpcErrors(app.getHttpAdapter()));
      app.connectMicroservice({ strategy: server }, { inheritAppConfig: true });
      await app.startAllMicroservices();
    },
  });
}
