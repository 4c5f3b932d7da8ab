import { deliveryCountMigration, deliverySurvivalMigration, dropOutboxMigration, inboxHashMigration, outboxMigration } from '@sagaflow/shared';
import { Migration0001Initial } from './Migration0001Initial.js';
import { Migration0003VoidedOrders } from './Migration0003VoidedOrders.js';

/** Applied in this order at start; never edit one that has shipped, add the next. */
export const migrations = [
  { name: 'Migration0001Initial', class: Migration0001Initial },
  { name: 'Migration0002Outbox', class: outboxMigration('payment') },
  { name: 'Migration0003VoidedOrders', class: Migration0003VoidedOrders },
  { name: 'Migration0004RepliesFromInbox', class: dropOutboxMigration('payment') },
  { name: 'Migration0005DeliveryCounts', class: deliveryCountMigration('payment') },
  { name: 'Migration0006InboxHashes', class: inboxHashMigration('payment') },
  { name: 'Migration0007DeliverySurvivals', class: deliverySurvivalMigration('payment') },
];
