import { z } from 'zod';

/** The services that own data and take commands. The first segment of every message type names one. */
export const SERVICES = ['order', 'inventory', 'payment', 'notification'] as const;
export type ServiceName = (typeof SERVICES)[number];

/**
 * A command sent by the orchestrator to one service, with the payload it carries and the result its
 * success reply carries. Types read `<service>.<verb>`; replies are `<type>.succeeded` / `<type>.failed`.
 */
export interface CommandContract<P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  readonly kind: 'command';
  readonly type: string;
  readonly service: ServiceName;
  readonly payload: P;
  readonly result: R;
}

/** A read-only request/reply query answered by one service (used by the HTTP read endpoints). */
export interface QueryContract<P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  readonly kind: 'query';
  readonly type: string;
  readonly service: ServiceName;
  readonly payload: P;
  readonly result: R;
}

function serviceOf(type: string): ServiceName {
  const service = type.split('.')[0] as ServiceName;
  if (!SERVICES.includes(service)) throw new Error(`message type ${type} does not start with a service name`);
  return service;
}

export function defineCommand<P extends z.ZodType, R extends z.ZodType>(type: string, payload: P, result: R): CommandContract<P, R> {
  return { kind: 'command', type, service: serviceOf(type), payload, result };
}

export function defineQuery<P extends z.ZodType, R extends z.ZodType>(type: string, payload: P, result: R): QueryContract<P, R> {
  return { kind: 'query', type, service: serviceOf(type), payload, result };
}

export type PayloadOf<C extends { payload: z.ZodType }> = z.infer<C['payload']>;
export type ResultOf<C extends { result: z.ZodType }> = z.infer<C['result']>;

/** Building blocks used by several contracts. */
export const Id = z.uuid();
const UUID = z.regexes.uuid();
/** `Id`'s check without a parse (it runs several times on every message sent and read). */
export const isId = (value: unknown): value is string => typeof value === 'string' && UUID.test(value);
export const Sku = z.string().regex(/^[A-Z0-9][A-Z0-9-]{0,63}$/, 'SKU: upper-case letters, digits and dashes');
/** The largest value of a PostgreSQL `integer` column, which holds amounts and stock. */
export const INT32_MAX = 2_147_483_647;
/** Money is always an integer amount of minor units (cents) with an ISO 4217 currency. */
export const MinorUnits = z.number().int().nonnegative().max(INT32_MAX);
export const Currency = z.string().regex(/^[A-Z]{3}$/, 'ISO 4217 currency code');
/** Lines per order, and units per line: what HTTP accepts is what a command may carry. */
export const MAX_ORDER_LINES = 50;
export const MAX_LINE_QUANTITY = 1000;
export const OrderLine = z.strictObject({ sku: Sku, quantity: z.number().int().positive().max(MAX_LINE_QUANTITY) });
export type OrderLine = z.infer<typeof OrderLine>;

/** C0 and C1 controls (NUL included) and lone surrogates: nobody can read them, and PostgreSQL refuses NUL and lone surrogates. */
const UNPRINTABLE = /[\p{Cc}\p{Cs}]/u;
const isPrintable = (value: string): boolean => !UNPRINTABLE.test(value);

/** Free text from outside (names, references, reasons): trimmed, 1 to `max` characters, printable. */
export const Text = (max: number) =>
  z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(max)
    .refine(isPrintable, 'must be printable text: no control characters, NUL or lone surrogates');

/** Why a saga was cancelled, as commands carry it: a failure's code and reason, or an operator's note. */
export const REASON_MAX = 2000;

/** A reason as messages carry it: printable like Text (it is stored, and PostgreSQL refuses NUL), but it may be empty. */
export const Reason = (max: number) => z.string().max(max).refine(isPrintable, 'must be printable text: no control characters, NUL or lone surrogates');

/** Correlation ids (X-Correlation-Id, AMQP correlation-id): 1 to 128 printable ASCII characters. */
export const CorrelationId = z.string().regex(/^[\x20-\x7e]{1,128}$/, 'must be 1 to 128 printable ASCII characters');
