import { type OrderLine, type OrderStatus, statement, type Queryable } from '@sagaflow/shared';

/** The `Order` entity's table: commands write it here, queries read the entity. */
const ORDERS = '"order"."orders"';

const CREATE = statement(
  'order.create',
  `insert into ${ORDERS} (id, customer_id, items, status) values ($1, $2, $3::jsonb, 'PENDING') on conflict (id) do nothing returning id`,
);
const STATUS_OF = statement('order.status-of', `select status from ${ORDERS} where id = $1`);
// Only a PENDING order moves on; a confirm and a cancel racing for one order take turns on its row lock.
const CONFIRM = statement(
  'order.confirm',
  `update ${ORDERS} set status = 'CONFIRMED', total = $2, currency = $3, updated_at = now() where id = $1 and status = 'PENDING' returning status`,
);
const CANCEL = statement(
  'order.cancel',
  `update ${ORDERS} set status = 'CANCELLED', failure_reason = $2, updated_at = now() where id = $1 and status = 'PENDING' returning status`,
);
const TOMBSTONE = statement(
  'order.tombstone',
  `insert into ${ORDERS} (id, customer_id, items, status, failure_reason) values ($1, '', '[]', 'CANCELLED', $2)`,
);

/** The order service's SQL for the saga's commands, on the command's transaction. */
export const orderStore = {
  /** Creates a PENDING order; false if one with that id exists (a redelivery, or a cancel that came first). */
  async create(tx: Queryable, order: { orderId: string; customerId: string; items: OrderLine[] }): Promise<boolean> {
    return (await tx.query(CREATE, [order.orderId, order.customerId, JSON.stringify(order.items)])).length === 1;
  },

  async statusOf(tx: Queryable, orderId: string): Promise<OrderStatus | undefined> {
    const [row] = await tx.query<{ status: OrderStatus }>(STATUS_OF, [orderId]);
    return row?.status;
  },

  /** Confirms a PENDING order; false if it is not PENDING (or does not exist). */
  async confirm(tx: Queryable, orderId: string, total: number, currency: string): Promise<boolean> {
    return (await tx.query(CONFIRM, [orderId, total, currency])).length === 1;
  },

  /** Cancels a PENDING order; false if it is not PENDING (or does not exist). */
  async cancel(tx: Queryable, orderId: string, reason: string): Promise<boolean> {
    return (await tx.query(CANCEL, [orderId, reason])).length === 1;
  },

  /**
   * Cancel before create: a tombstone, so the create (if it ever comes) is refused. A create committing
   * meanwhile makes this insert fail, and the retry then cancels that order.
   */
  tombstone: (tx: Queryable, orderId: string, reason: string) => tx.query(TOMBSTONE, [orderId, reason]),
};
