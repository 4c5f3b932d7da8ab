import { z } from 'zod';
import { Currency, defineCommand, defineQuery, Id, INT32_MAX, MAX_ORDER_LINES, MinorUnits, OrderLine, Sku } from './define.js';

export const PricedLine = OrderLine.extend({ unitPrice: MinorUnits });
export const StockItem = z.strictObject({
  sku: Sku,
  name: z.string(),
  price: MinorUnits,
  currency: Currency,
  available: z.number().int().max(INT32_MAX),
  reserved: z.number().int().max(INT32_MAX),
});
export type StockItem = z.infer<typeof StockItem>;

export const InventoryCommands = {
  /** Holds stock for every line of the order, all or nothing, and prices the lines. */
  reserve: defineCommand(
    'inventory.reserve',
    z.strictObject({ orderId: Id, items: z.array(OrderLine).min(1).max(MAX_ORDER_LINES) }),
    z.strictObject({ lines: z.array(PricedLine), total: MinorUnits, currency: Currency }),
  ),
  /** Gives back whatever the order holds; a no-op when it holds nothing. */
  release: defineCommand('inventory.release', z.strictObject({ orderId: Id }), z.strictObject({ released: z.number().int().nonnegative().max(INT32_MAX) })),
} as const;

export const InventoryQueries = {
  catalog: defineQuery('inventory.catalog', z.strictObject({}), z.array(StockItem)),
  item: defineQuery('inventory.item', z.strictObject({ sku: Sku }), StockItem.nullable()),
} as const;
