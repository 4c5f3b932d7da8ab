import { z } from 'zod';
import { Currency, defineCommand, defineQuery, Id, MinorUnits, OrderLine, Sku } from './define.js';

export const PricedLine = OrderLine.extend({ unitPrice: MinorUnits });
export const StockItem = z.object({
  sku: Sku,
  name: z.string(),
  price: MinorUnits,
  currency: Currency,
  available: z.number().int(),
  reserved: z.number().int(),
});
export type StockItem = z.infer<typeof StockItem>;

export const InventoryCommands = {
  /** Holds stock for every line of the order, all or nothing, and prices the lines. */
  reserve: defineCommand(
    'inventory.reserve',
    z.object({ orderId: Id, items: z.array(OrderLine).min(1) }),
    z.object({ lines: z.array(PricedLine), total: MinorUnits, currency: Currency }),
  ),
  /** Gives back whatever the order holds; a no-op when it holds nothing. */
  release: defineCommand('inventory.release', z.object({ orderId: Id }), z.object({ released: z.number().int() })),
} as const;

export const InventoryQueries = {
  catalog: defineQuery('inventory.catalog', z.object({}), z.array(StockItem)),
  item: defineQuery('inventory.item', z.object({ sku: z.string() }), StockItem.nullable()),
} as const;
