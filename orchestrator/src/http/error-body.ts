import { z } from 'zod';

/** A field that failed validation: its path (`items.0.quantity`, a header or parameter name) and why. */
export const FieldError = z.strictObject({ field: z.string(), message: z.string() });

/**
 * Every 4xx and 5xx body: Nest's own (`{statusCode, message, error}`), and ours built the same way (400 with
 * `errors`, 422, 503). The body parser's 413 and 415 carry no `error`.
 */
export const ErrorBody = z.strictObject({
  statusCode: z.number().int(),
  error: z.string().optional(),
  message: z.string(),
  /** On a 400 from validation: every bad field. */
  errors: z.array(FieldError).optional(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;
