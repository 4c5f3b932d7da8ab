import { statement, type Queryable } from '@sagaflow/shared';

/** The tables of the `Payment` and `VoidedOrder` entities: commands write them here, queries read the entities. */
const PAYMENTS = '"payment"."payment"';
const VOIDED = '"payment"."voided_order"';

const TAKE_TURN = statement('payment.take-turn', `select pg_advisory_xact_lock(hashtextextended($1, 0))`);
const CHARGE_STATE = statement(
  'payment.charge-state',
  `select (select id from ${PAYMENTS} where order_id = $1 and type = 'charge') as charge_id,
          exists (select 1 from ${VOIDED} where order_id = $1) as voided`,
);
const INSERT_CHARGE = statement(
  'payment.insert-charge',
  `insert into ${PAYMENTS} (id, order_id, type, amount, currency, payment_method) values ($1, $2, 'charge', $3, $4, $5)`,
);
const PAYMENTS_OF = statement('payment.of-order', `select id, type from ${PAYMENTS} where order_id = $1`);
const VOID = statement('payment.void', `insert into ${VOIDED} (order_id) values ($1) on conflict do nothing`);
// The refund gives back exactly what the charge took.
const INSERT_REFUND = statement(
  'payment.insert-refund',
  `insert into ${PAYMENTS} (id, order_id, type, amount, currency, payment_method)
   select $1, order_id, 'refund', amount, currency, payment_method from ${PAYMENTS} where id = $2`,
);

/** Payment's SQL for the saga's commands, on the command's transaction. */
export const paymentStore = {
  /**
   * The charge and the refund of one order take turns, even on two instances of this service: a refund
   * that finds no charge voids the order, and the charge must then see that (and the refund the charge).
   * Neither reads the other's uncommitted row, so a lock until commit orders them.
   */
  takeTurn: (tx: Queryable, orderId: string) => tx.query(TAKE_TURN, [`payment:${orderId}`]),

  async chargeState(tx: Queryable, orderId: string): Promise<{ chargeId: string | null; voided: boolean }> {
    const [row] = await tx.query<{ charge_id: string | null; voided: boolean }>(CHARGE_STATE, [orderId]);
    return { chargeId: row.charge_id, voided: row.voided };
  },

  insertCharge: (tx: Queryable, charge: { id: string; orderId: string; amount: number; currency: string; paymentMethod: string }) =>
    tx.query(INSERT_CHARGE, [charge.id, charge.orderId, charge.amount, charge.currency, charge.paymentMethod]),

  paymentsOf: (tx: Queryable, orderId: string) => tx.query<{ id: string; type: 'charge' | 'refund' }>(PAYMENTS_OF, [orderId]),

  /** Nothing was charged: remember it, so that a charge that comes late takes no money. */
  voidOrder: (tx: Queryable, orderId: string) => tx.query(VOID, [orderId]),

  insertRefund: (tx: Queryable, refundId: string, chargeId: string) => tx.query(INSERT_REFUND, [refundId, chargeId]),
};
