import { readFileSync } from 'node:fs';
import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { StockItem } from './stock.entities.js';

/** One catalog entry in a CATALOG_SEED_FILE (a JSON array of these); prices in minor units. */
const SeedItem = z.strictObject({
  sku: z.string().min(1),
  name: z.string().min(1),
  price: z.number().int().nonnegative(),
  currency: z.string().length(3),
  available: z.number().int().nonnegative(),
});
type SeedItem = z.infer<typeof SeedItem>;

/** The demo catalog (prices in cents). SKU-LIMITED has 5 units to show that concurrent orders never oversell. */
export const DEMO_CATALOG: SeedItem[] = [
  { sku: 'SKU-COFFEE', name: 'Coffee beans 1 kg', price: 1250, currency: 'EUR', available: 10_000 },
  { sku: 'SKU-MUG', name: 'Enamel mug', price: 899, currency: 'EUR', available: 10_000 },
  { sku: 'SKU-TEE', name: 'T-shirt', price: 1999, currency: 'EUR', available: 10_000 },
  { sku: 'SKU-LIMITED', name: 'Limited print', price: 4999, currency: 'EUR', available: 5 },
  { sku: 'SKU-SOLDOUT', name: 'Sold-out poster', price: 2500, currency: 'EUR', available: 0 },
];

/** Seeds the catalog once, into an empty table: restarts never reset stock. */
export async function seedCatalog(em: EntityManager, file?: string): Promise<number> {
  if ((await em.count(StockItem, {})) > 0) return 0;
  const items = file ? readSeedFile(file) : DEMO_CATALOG;
  for (const item of items) em.create(StockItem, { ...item, reserved: 0 });
  await em.flush();
  return items.length;
}

function readSeedFile(file: string): SeedItem[] {
  const parsed = z.array(SeedItem).min(1).safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`CATALOG_SEED_FILE ${file} is not a list of {sku, name, price, currency, available}: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
