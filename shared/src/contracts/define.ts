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
export const Sku = z.string().regex(/^[A-Z0-9][A-Z0-9-]{0,63}$/, 'SKU: upper-case letters, digits and dashes');
/** Money is always an integer amount of minor units (cents) with an ISO 4217 currency. */
export const MinorUnits = z.number().int().nonnegative();
export const Currency = z.string().regex(/^[A-Z]{3}$/, 'ISO 4217 currency code');
export const OrderLine = z.object({ sku: Sku, quantity: z.number().int().positive().max(1000) });
export type OrderLine = z.infer<typeof OrderLine>;
