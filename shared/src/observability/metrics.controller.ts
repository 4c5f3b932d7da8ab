import { Controller, Get, Header, NotFoundException } from '@nestjs/common';
import { Public } from '../runtime/public.js';
import { METRICS_CONTENT_TYPE, metricsEnabled, renderMetrics } from './metrics.js';

/**
 * GET /metrics: Prometheus's text format, on every process's HTTP port. Public, like /health, so that a
 * scraper needs no token: serve it on an internal network only (it names queues, routes and rates).
 * 404 with METRICS=off.
 */
@Public()
@Controller('metrics')
export class MetricsController {
  @Get()
  @Header('Content-Type', METRICS_CONTENT_TYPE)
  @Header('Cache-Control', 'no-store')
  metrics(): Promise<string> {
    if (!metricsEnabled()) throw new NotFoundException('metrics are off (METRICS=off)');
    return renderMetrics();
  }
}
