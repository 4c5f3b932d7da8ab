import type { OrderLine } from '@sagaflow/shared';

/** What the order saga knows and carries from step to step. */
export interface OrderSagaData {
  orderId: string;
  customerId: string;
  items: OrderLine[];
  paymentMethod: string;
  /** Known once inventory has priced the lines (minor units). */
  total: number | null;
  currency: string | null;
}
