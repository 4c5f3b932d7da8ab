import { type ArgumentMetadata, BadRequestException, type PipeTransform } from '@nestjs/common';
import type { z } from 'zod';
import type { ErrorBody } from './error-body.js';

/**
 * Validates a request body, query or path parameter with a zod schema; 400 names every bad field (a path
 * parameter by its name).
 */
export class ZodPipe<S extends z.ZodType> implements PipeTransform<unknown, z.output<S>> {
  constructor(private readonly schema: S) {}

  transform(value: unknown, metadata?: ArgumentMetadata): z.output<S> {
    const parsed = this.schema.safeParse(value);
    if (parsed.success) return parsed.data;
    // A key of the whole query or body that is not allowed is named by where it came: (query) or (body).
    const whole = metadata?.type === 'query' ? '(query)' : '(body)';
    throw badRequest(parsed.error.issues.map((issue) => ({ field: [metadata?.data, ...issue.path].filter((part) => part !== undefined).join('.') || whole, message: issue.message })));
  }
}

/** A request header checked with a schema (Nest runs no pipes on headers): its value, or 400 naming it. */
export function checkHeader<S extends z.ZodType>(name: string, schema: S, value: string | undefined): z.output<S> | undefined {
  if (value === undefined) return undefined;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw badRequest([{ field: name, message: parsed.error.issues[0]?.message ?? 'invalid' }]);
}

function badRequest(errors: NonNullable<ErrorBody['errors']>): BadRequestException {
  return new BadRequestException({ statusCode: 400, error: 'Bad Request', message: 'invalid request', errors } satisfies ErrorBody);
}
