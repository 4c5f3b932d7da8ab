import { defineEntity, p, type InferEntity } from '@mikro-orm/postgresql';

/** A catalog item: its price (minor units) and how many units are free and held. */
export const StockItem = defineEntity({
  name: 'StockItem',
  tableName: 'stock_item',
  properties: {
    sku: p.string().primary(),
    name: p.string(),
    price: p.integer(),
    currency: p.string(),
    available: p.integer(),
    reserved: p.integer(),
  },
});
export type StockItem = InferEntity<typeof StockItem>;

/**
 * What one order holds. RELEASED also marks a release that came before its reserve (after a timeout),
 * so a late reserve for that order reserves nothing.
 */
export const Reservation = defineEntity({
  name: 'Reservation',
  tableName: 'reservation',
  properties: {
    orderId: p.uuid().primary(),
    lines: p.json<{ sku: string; quantity: number; unitPrice: number }[]>(),
    currency: p.string().nullable(),
    status: p.enum(['HELD', 'RELEASED'] as const),
    createdAt: p.datetime().onCreate(() => new Date()),
    releasedAt: p.datetime().nullable(),
  },
});
export type Reservation = InferEntity<typeof Reservation>;
