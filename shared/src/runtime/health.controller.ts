import { MikroORM } from '@mikro-orm/postgresql';
import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { Broker } from './broker.js';
import { Public } from './public.js';

/** GET /health: 200 when this process reaches RabbitMQ and PostgreSQL, 503 naming what is down. */
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly broker: Broker,
    private readonly orm: MikroORM,
  ) {}

  @Get()
  @HealthCheck()
  check() {
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
