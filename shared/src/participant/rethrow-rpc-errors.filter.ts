import { type ArgumentsHost, Catch } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { throwError } from 'rxjs';

/**
 * Nest's default RPC filter turns every handler error into `{ status: 'error', message: 'Internal server
 * error' }`; the participant server needs the real error to decide between retrying and dead-lettering.
 * HTTP errors keep Nest's usual handling.
 */
@Catch()
export class RethrowRpcErrors extends BaseExceptionFilter {
  override catch(error: unknown, host: ArgumentsHost) {
    if (host.getType() === 'rpc') return throwError(() => error);
    return super.catch(error, host);
  }
}
