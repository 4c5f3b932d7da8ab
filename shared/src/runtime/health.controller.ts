import { MikroORM } from '@mikro-orm/postgresql';
import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { Broker } from './broker.js';
import { Public } from './public.js';

/**
 * GET /health/live: 200 while the process runs and its event loop turns (restart it when this fails).
 * GET /health/ready: 200 when it reaches RabbitMQ and PostgreSQL, 503 naming what is down (send it no traffic
 * meanwhile; it reconnects by itself). GET /health: the same as ready, as before.
 */
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly broker: Broker,
    private readonly orm: MikroORM,
  ) {}

  @Get('live')
  @HealthCheck()
  live() {
    // Answering at all is the proof: a blocked event loop answers nothing. Dependencies are ready's concern,
    // so that a broker or database outage never gets a process restarted.
    return this.health.check([]);
  }

  @Get(['ready', ''])
  @HealthCheck()
  ready() {
    return this.health.check([() => this.postgres(), () => this.rabbitmq()]);
  }

  private async postgres() {
    const indicator = this.indicators.check('postgresql');
    const connection = await this.orm.checkConnection();
    return connection.ok ? indicator.up() : indicator.down(connection.reason);
  }

  private rabbitmq() {
    const indicator = this.indicators.check('rabbitmq');
    return this.broker.isConnected() ? indicator.up() : indicator.down('not connected');
  }
}
