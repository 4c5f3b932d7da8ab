import { type OrderLine, statement, type Queryable } from '@sagaflow/shared';

/** The tables of the `StockItem` and `Reservation` entities: commands write them here, queries read the entities. */
const STOCK = '"inventory"."stock_item"';
const RESERVATIONS = '"inventory"."reservation"';

export type HeldLine = { sku: string; quantity: number; unitPrice: number };

const RESERVATION_OF = statement('inventory.reservation-of', `select status, lines, currency from ${RESERVATIONS} where order_id = $1`);
// Rows are locked in SKU order, so concurrent orders never wait on each other in opposite orders.
const LOCK_STOCK = statement(
  'inventory.lock-stock',
  `select sku, available, price, currency from ${STOCK} where sku = any($1::text[]) order by sku for update`,
);
const MOVE_STOCK = statement(
  'inventory.move-stock',
  `update ${STOCK} as stock set available = stock.available - moved.quantity, reserved = stock.reserved + moved.quantity
   from unnest($1::text[], $2::int[]) as moved(sku, quantity) where stock.sku = moved.sku`,
);
const HOLD = statement(
  'inventory.hold',
  `insert into ${RESERVATIONS} (order_id, lines, currency, status) values ($1, $2::jsonb, $3, 'HELD')`,
);
const TOMBSTONE = statement(
  'inventory.tombstone',
  `insert into ${RESERVATIONS} (order_id, lines, currency, status, released_at) values ($1, '[]', null, 'RELEASED', now())`,
);
const MARK_RELEASED = statement('inventory.mark-released', `update ${RESERVATIONS} set status = 'RELEASED', released_at = now() where order_id = $1`);

/** Inventory's SQL for the saga's commands, on the command's transaction. */
export const inventoryStore = {
  async reservationOf(tx: Queryable, orderId: string): Promise<{ status: 'HELD' | 'RELEASED'; lines: HeldLine[]; currency: string } | undefined> {
    const [row] = await tx.query<{ status: 'HELD' | 'RELEASED'; lines: HeldLine[]; currency: string }>(RESERVATION_OF, [orderId]);
    return row;
  },

  /** The stock of these SKUs, locked until commit (absent SKUs are not in the catalog). */
  async lockStock(tx: Queryable, skus: string[]): Promise<Map<string, { available: number; price: number; currency: string }>> {
    const rows = await tx.query<{ sku: string; available: number; price: number; currency: string }>(LOCK_STOCK, [skus]);
    return new Map(rows.map(({ sku, ...stock }) => [sku, stock]));
  },

  /** Moves these quantities from available to reserved (negative quantities move them back). */
  moveStock: (tx: Queryable, lines: OrderLine[]) => tx.query(MOVE_STOCK, [lines.map((line) => line.sku), lines.map((line) => line.quantity)]),

  hold: (tx: Queryable, orderId: string, lines: HeldLine[], currency: string) => tx.query(HOLD, [orderId, JSON.stringify(lines), currency]),

  /** Release before reserve: remembered, so the reserve (if it ever comes) holds nothing. */
  tombstone: (tx: Queryable, orderId: string) => tx.query(TOMBSTONE, [orderId]),

  markReleased: (tx: Queryable, orderId: string) => tx.query(MARK_RELEASED, [orderId]),
};
