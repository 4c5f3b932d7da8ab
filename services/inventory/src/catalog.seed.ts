import { readFileSync } from 'node:fs';
import type { EntityManager } from '@mikro-orm/postgresql';
import { StockItem } from './stock.entities.js';

type SeedItem = { sku: string; name: string; price: number; currency: string; available: number };

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
  const items: SeedItem[] = file ? JSON.parse(readFileSync(file, 'utf8')) : DEMO_CATALOG;
  for (const item of items) em.create(StockItem, { ...item, reserved: 0 });
  await em.flush();
  return items.length;
}
