import { Controller } from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import {
  type CommandContext,
  failed,
  InventoryCommands,
  InventoryQueries,
  type OrderLine,
  type PayloadOf,
  type QueryContext,
  type ReplyOf,
  sql,
  type StockItem as StockItemView,
  succeeded,
} from '@sagaflow/shared';
import { StockItem } from './stock.entities.js';

const { reserve, release } = InventoryCommands;

/** The tables of the `StockItem` and `Reservation` entities: commands write them in SQL, queries read the entities. */
const STOCK = '"inventory"."stock_item"';
const RESERVATIONS = '"inventory"."reservation"';

type HeldLine = { sku: string; quantity: number; unitPrice: number };

/**
 * Inventory's side of the saga: each handler is one local transaction whose reply the saga waits for.
 * Commands are the hot path, so they speak SQL on the transaction's connection (a MikroORM find and
 * flush cost more CPU than the rest of a command; see the README's Performance section).
 */
@Controller()
export class InventoryHandlers {
  @MessagePattern(reserve.type)
  async reserve(@Payload() command: PayloadOf<typeof reserve>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof reserve>> {
    const [existing] = await sql<{ status: string; lines: HeldLine[]; currency: string }>(
      em,
      `select status, lines, currency from ${RESERVATIONS} where order_id = ?`,
      [command.orderId],
    );
    if (existing?.status === 'HELD') return succeeded(priced(existing.lines, existing.currency));
    if (existing) return failed('ALREADY_RELEASED', `the reservation for order ${command.orderId} was released`);

    const lines: (HeldLine & { currency: string })[] = [];
    // One row at a time in SKU order, so concurrent orders lock rows in the same order (no deadlock).
    for (const { sku, quantity } of mergeLines(command.items)) {
      const [held] = await sql<{ price: number; currency: string }>(
        em,
        `update ${STOCK} set available = available - ?, reserved = reserved + ? where sku = ? and available >= ? returning price, currency`,
        [quantity, quantity, sku, quantity],
      );
      if (!held) {
        // The failure reply rolls back whatever earlier lines held.
        const [item] = await sql<{ available: number }>(em, `select available from ${STOCK} where sku = ?`, [sku]);
        return item
          ? failed('OUT_OF_STOCK', `${sku}: ${quantity} requested, ${item.available} available`)
          : failed('UNKNOWN_SKU', `${sku} is not in the catalog`);
      }
      lines.push({ sku, quantity, unitPrice: held.price, currency: held.currency });
    }
    const currencies = new Set(lines.map((line) => line.currency));
    if (currencies.size > 1) return failed('MIXED_CURRENCIES', `items are priced in ${[...currencies].join(', ')}`);

    const heldLines = lines.map(({ sku, quantity, unitPrice }) => ({ sku, quantity, unitPrice }));
    const currency = lines[0].currency;
    // A release that committed meanwhile makes this insert fail: the retry then finds it released.
    await sql(em, `insert into ${RESERVATIONS} (order_id, lines, currency, status) values (?, ?::jsonb, ?, 'HELD')`, [
      command.orderId,
      JSON.stringify(heldLines),
      currency,
    ]);
    return succeeded(priced(heldLines, currency));
  }

  @MessagePattern(release.type)
  async release(@Payload() command: PayloadOf<typeof release>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof release>> {
    const [reservation] = await sql<{ status: string; lines: HeldLine[] }>(em, `select status, lines from ${RESERVATIONS} where order_id = ?`, [
      command.orderId,
    ]);
    if (!reservation) {
      // Release before reserve: remember it, so the reserve (if it ever comes) holds nothing.
      await sql(em, `insert into ${RESERVATIONS} (order_id, lines, currency, status, released_at) values (?, '[]', null, 'RELEASED', now())`, [
        command.orderId,
      ]);
      return succeeded({ released: 0 });
    }
    if (reservation.status === 'RELEASED') return succeeded({ released: 0 });
    for (const { sku, quantity } of reservation.lines) {
      await sql(em, `update ${STOCK} set available = available + ?, reserved = reserved - ? where sku = ?`, [quantity, quantity, sku]);
    }
    await sql(em, `update ${RESERVATIONS} set status = 'RELEASED', released_at = now() where order_id = ?`, [command.orderId]);
    return succeeded({ released: reservation.lines.reduce((sum, line) => sum + line.quantity, 0) });
  }

  @MessagePattern(InventoryQueries.catalog.type)
  async catalog(@Ctx() { em }: QueryContext): Promise<StockItemView[]> {
    return (await em.find(StockItem, {}, { orderBy: { sku: 'asc' } })).map(view);
  }

  @MessagePattern(InventoryQueries.item.type)
  async item(@Payload() query: PayloadOf<typeof InventoryQueries.item>, @Ctx() { em }: QueryContext): Promise<StockItemView | null> {
    const item = await em.findOne(StockItem, query.sku);
    return item ? view(item) : null;
  }
}

/** Same SKU on two lines counts once, and lines go in SKU order. */
function mergeLines(items: OrderLine[]): OrderLine[] {
  const bySku = new Map<string, number>();
  for (const { sku, quantity } of items) bySku.set(sku, (bySku.get(sku) ?? 0) + quantity);
  return [...bySku].sort(([a], [b]) => a.localeCompare(b)).map(([sku, quantity]) => ({ sku, quantity }));
}

function priced(lines: { sku: string; quantity: number; unitPrice: number }[], currency: string) {
  return { lines, total: lines.reduce((sum, line) => sum + line.quantity * line.unitPrice, 0), currency };
}

const view = (item: StockItem): StockItemView => ({
  sku: item.sku,
  name: item.name,
  price: item.price,
  currency: item.currency,
  available: item.available,
  reserved: item.reserved,
});
