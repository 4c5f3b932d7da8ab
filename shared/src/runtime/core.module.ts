import { Migrator } from '@mikro-orm/migrations';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { defineConfig, type EntitySchema } from '@mikro-orm/postgresql';
import type { MigrationObject } from '@mikro-orm/core';
import { type DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { LoggerModule } from 'nestjs-pino';
import type { Logger } from 'pino';
import { type BaseEnv, databaseTimeouts } from '../config/env.js';
import { Database, poolTimeouts } from '../database/database.js';
import { DeliveryCounter } from '../messaging/deliveries.js';
import { accessLog } from '../logging/logger.js';
import { configureMetrics } from '../observability/metrics.js';
import { MetricsController } from '../observability/metrics.controller.js';
import { Broker } from './broker.js';
import { HealthController } from './health.controller.js';
import { keepDays, type Retention, RetentionSweeper } from './retention.js';

export interface CoreOptions {
  /** Process name: logs, broker connection name. */
  name: string;
  env: BaseEnv;
  logger: Logger;
  /** The PostgreSQL schema this process owns; its tables and its migrations table live there. */
  schema: string;
  entities: EntitySchema<any, any>[];
  migrations: MigrationObject[];
  /** Rows of this process's own that are kept only for a while (its delivery counts are added here). */
  retention?: Retention[];
}

/**
 * What every Sagaflow process has: JSON logs, its database (MikroORM for the schema, migrations and
 * reads; the pg driver for the per-message path), the broker, /health and /metrics.
 */
@Module({})
export class SagaflowCoreModule {
  static forRoot(options: CoreOptions): DynamicModule {
    const { env, logger, name, schema } = options;
    configureMetrics({ on: env.METRICS === 'on', service: name });
    return {
      module: SagaflowCoreModule,
      global: true,
      imports: [
        LoggerModule.forRoot({ pinoHttp: accessLog(logger) }),
        MikroOrmModule.forRoot({
          // Reads fork their own entity manager; a request context per HTTP request would be a fork for nothing.
          registerRequestContext: false,
          ...defineConfig({
            clientUrl: env.DATABASE_URL,
            schema,
            entities: options.entities,
            extensions: [Migrator],
            migrations: { migrationsList: options.migrations, snapshot: false, tableName: 'mikro_orm_migrations' },
            pool: { min: 1, max: env.DB_POOL_SIZE },
            driverOptions: poolTimeouts(databaseTimeouts(env)),
            allowGlobalContext: false,
          }),
        }),
        TerminusModule,
      ],
      controllers: [HealthController, MetricsController],
      providers: [
        { provide: Broker, useFactory: (db: Database) => new Broker(env, name, logger, new DeliveryCounter(db, schema)), inject: [Database] },
        { provide: Database, useFactory: () => new Database(env.DATABASE_URL, env.DB_POOL_SIZE, logger, databaseTimeouts(env)) },
        {
          provide: RetentionSweeper,
          useFactory: (db: Database) =>
            new RetentionSweeper(
              db,
              logger,
              [...(options.retention ?? []), { what: 'delivery counts', table: `"${schema}"."delivery"`, column: 'last_at', keepSeconds: keepDays(env.INBOX_RETENTION_DAYS) }],
              env.RETENTION_SWEEP_INTERVAL_MS,
            ),
          inject: [Database],
        },
      ],
      exports: [Broker, Database],
    };
  }
}
