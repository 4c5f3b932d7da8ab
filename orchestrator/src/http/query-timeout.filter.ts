import { type ArgumentsHost, Catch, type ExceptionFilter } from '@nestjs/common';
import { QueryTimeoutError } from '@sagaflow/shared';
import type { Response } from 'express';

/** A service that does not answer a read makes the endpoint 503, naming the service. */
@Catch(QueryTimeoutError)
export class QueryTimeoutFilter implements ExceptionFilter {
  catch(error: QueryTimeoutError, host: ArgumentsHost): void {
    host.switchToHttp().getResponse<Response>().status(503).json({ statusCode: 503, error: 'Service Unavailable', message: error.message });
  }
}
