import { statement, type Queryable } from '@sagaflow/shared';

/** The `Notification` entity's table: the command writes it here, queries read the entity. */
const NOTIFICATIONS = '"notification"."notification"';

const RECORD = statement(
  'notification.record',
  `insert into ${NOTIFICATIONS} (id, order_id, customer_id, kind, reason) values ($1, $2, $3, $4, $5)
   on conflict (order_id, kind) do nothing returning id`,
);
const SENT = statement('notification.sent', `select id from ${NOTIFICATIONS} where order_id = $1 and kind = $2`);

export type NotificationKind = 'confirmation' | 'cancellation';

/** The notification service's SQL for the saga's command, on the command's transaction. */
export const notificationStore = {
  /** Records a notice; false if this order already had one of this kind. */
  async record(tx: Queryable, notice: { id: string; orderId: string; customerId: string; kind: NotificationKind; reason?: string }): Promise<boolean> {
    const rows = await tx.query(RECORD, [notice.id, notice.orderId, notice.customerId, notice.kind, notice.reason ?? null]);
    return rows.length === 1;
  },

  async sent(tx: Queryable, orderId: string, kind: NotificationKind): Promise<string> {
    const [row] = await tx.query<{ id: string }>(SENT, [orderId, kind]);
    return row.id;
  },
};
