import { deliveryCountMigration, deliverySurvivalMigration, dropOutboxMigration, inboxHashMigration, outboxMigration } from '@sagaflow/shared';
import { Migration0001Initial } from './Migration0001Initial.js';

/** Applied in this order at start; never edit one that has shipped, add the next. */
export const migrations = [
  { name: 'Migration0001Initial', class: Migration0001Initial },
  { name: 'Migration0002Outbox', class: outboxMigration('notification') },
  { name: 'Migration0003RepliesFromInbox', class: dropOutboxMigration('notification') },
  { name: 'Migration0004DeliveryCounts', class: deliveryCountMigration('notification') },
  { name: 'Migration0005InboxHashes', class: inboxHashMigration('notification') },
  { name: 'Migration0006DeliverySurvivals', class: deliverySurvivalMigration('notification') },
];
