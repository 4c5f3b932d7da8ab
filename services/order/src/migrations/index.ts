import { deliveryCountMigration, deliverySurvivalMigration, dropOutboxMigration, inboxHashMigration, outboxMigration } from '@sagaflow/shared';
import { Migration0001Initial } from './Migration0001Initial.js';

/** Applied in this order at start; never edit one that has shipped, add the next. */
export const migrations = [
  { name: 'Migration0001Initial', class: Migration0001Initial },
  { name: 'Migration0002Outbox', class: outboxMigration('order') },
  { name: 'Migration0003RepliesFromInbox', class: dropOutboxMigration('order') },
  { name: 'Migration0004DeliveryCounts', class: deliveryCountMigration('order') },
  { name: 'Migration0005InboxHashes', class: inboxHashMigration('order') },
  { name: 'Migration0006DeliverySurvivals', class: deliverySurvivalMigration('order') },
];
