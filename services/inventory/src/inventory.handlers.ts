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
  type StockItem as StockItemView,
  succeeded,
} from '@sagaflow/shared';
import { Reservation, StockItem } from './stock.entities.js';

const { reserve, release } = InventoryCommands;

/** Inventory's side of the saga: each handler is one local transaction whose reply the saga waits for. */
@Controller()
export class InventoryHandlers {
  @MessagePattern(reserve.type)
  async reserve(@Payload() command: PayloadOf<typeof reserve>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof reserve>> {
    const existing = await em.findOne(Reservation, command.orderId);
    if (existing?.status === 'HELD') return succeeded(priced(existing.lines, existing.currency!));
    if (existing) return failed('ALREADY_RELEASED', `the reservation for order ${command.orderId} was released`);

    const lines: { sku: string; quantity: number; unitPrice: number; currency: string }[] = [];
    // One row at a time in SKU order, so concurrent orders lock rows in the same order (no deadlock).
    for (const { sku, quantity } of mergeLines(command.items)) {
      const [held] = await em.execute<{ price: number; currency: string }[]>(
        `update "inventory"."stock_item" set available = available - ?, reserved = reserved + ?
         where sku = ? and available >= ? returning price, currency`,
        [quantity, quantity, sku, quantity],
      );
      if (!held) {
        // The failure reply rolls back whatever earlier lines held.
        const item = await em.findOne(StockItem, sku);
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
    em.create(Reservation, { orderId: command.orderId, lines: heldLines, currency, status: 'HELD', releasedAt: null });
    return succeeded(priced(heldLines, currency));
  }

  @MessagePattern(release.type)
  async release(@Payload() command: PayloadOf<typeof release>, @Ctx() { em }: CommandContext): Promise<ReplyOf<typeof release>> {
    const reservation = await em.findOne(Reservation, command.orderId);
    if (!reservation) {
      // Release before reserve: remember it, so the reserve (if it ever comes) holds nothing.
      em.create(Reservation, { orderId: command.orderId, lines: [], currency: null, status: 'RELEASED', releasedAt: new Date() });
      return succeeded({ released: 0 });
    }
    if (reservation.status === 'RELEASED') return succeeded({ released: 0 });
    for (const { sku, quantity } of reservation.lines) {
      await em.execute(`update "inventory"."stock_item" set available = available + ?, reserved = reserved - ? where sku = ?`, [
        quantity,
        quantity,
        sku,
      ]);
    }
    reservation.status = 'RELEASED';
    reservation.releasedAt = new Date();
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
