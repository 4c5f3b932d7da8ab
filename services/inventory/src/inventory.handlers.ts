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
import { inventoryStore as store } from './inventory.store.js';
import { StockItem } from './stock.entities.js';

const { reserve, release } = InventoryCommands;

/** Inventory's side of the saga: each command is a local transaction whose reply the saga waits for. */
@Controller()
export class InventoryHandlers {
  @MessagePattern(reserve.type)
  async reserve(@Payload() command: PayloadOf<typeof reserve>, @Ctx() { tx }: CommandContext): Promise<ReplyOf<typeof reserve>> {
    const existing = await store.reservationOf(tx, command.orderId);
    if (existing?.status === 'HELD') return succeeded(priced(existing.lines, existing.currency));
    if (existing) return failed('ALREADY_RELEASED', `the reservation for order ${command.orderId} was released`);

    // Everything is checked before anything moves, so a refusal writes nothing.
    const wanted = mergeLines(command.items);
    const stock = await store.lockStock(tx, wanted.map((line) => line.sku));
    for (const { sku, quantity } of wanted) {
      const item = stock.get(sku);
      if (!item) return failed('UNKNOWN_SKU', `${sku} is not in the catalog`);
      if (item.available < quantity) return failed('OUT_OF_STOCK', `${sku}: ${quantity} requested, ${item.available} available`);
    }
    const currencies = new Set(wanted.map((line) => stock.get(line.sku)!.currency));
    if (currencies.size > 1) return failed('MIXED_CURRENCIES', `items are priced in ${[...currencies].join(', ')}`);

    const lines = wanted.map(({ sku, quantity }) => ({ sku, quantity, unitPrice: stock.get(sku)!.price }));
    const [currency] = currencies;
    await store.moveStock(tx, wanted);
    // A release that committed meanwhile makes this insert fail: the retry then finds it released.
    await store.hold(tx, command.orderId, lines, currency);
    return succeeded(priced(lines, currency));
  }

  @MessagePattern(release.type)
  async release(@Payload() command: PayloadOf<typeof release>, @Ctx() { tx }: CommandContext): Promise<ReplyOf<typeof release>> {
    const reservation = await store.reservationOf(tx, command.orderId);
    if (!reservation) {
      await store.tombstone(tx, command.orderId);
      return succeeded({ released: 0 });
    }
    if (reservation.status === 'RELEASED') return succeeded({ released: 0 });
    await store.lockStock(tx, reservation.lines.map((line) => line.sku));
    await store.moveStock(tx, reservation.lines.map(({ sku, quantity }) => ({ sku, quantity: -quantity })));
    await store.markReleased(tx, command.orderId);
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
