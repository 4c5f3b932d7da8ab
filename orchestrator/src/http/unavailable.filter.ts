import { type ArgumentsHost, Catch, HttpException } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { isConnectionFailure, QueryTimeoutError } from '@sagaflow/shared';
import type { Response } from 'express';
import type { ErrorBody } from './error-body.js';

/**
 * What is not the client's fault nor a bug answers 503 with Retry-After: a service that does not answer a
 * read (named), or PostgreSQL or RabbitMQ out of reach. Everything else goes to Nest's own handling, where
 * a 5xx is a bug and is logged as one.
 */
@Catch()
export class UnavailableFilter extends BaseExceptionFilter {
  override catch(error: unknown, host: ArgumentsHost): void {
    const unavailable =
      error instanceof QueryTimeoutError ? error.message : !(error instanceof HttpException) && isConnectionFailure(error) ? 'a dependency (PostgreSQL or RabbitMQ) is unreachable; try again' : null;
    if (unavailable === null) return super.catch(error, host);
    host.switchToHttp().getResponse<Response>().status(503).setHeader('Retry-After', '1').json({ statusCode: 503, error: 'Service Unavailable', message: unavailable } satisfies ErrorBody);
  }
}
