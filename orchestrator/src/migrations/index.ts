import { deliveryCountMigration, deliverySurvivalMigration } from '@sagaflow/shared';
import { Migration0001Initial } from './Migration0001Initial.js';
import { Migration0002IdempotencyKeys } from './Migration0002IdempotencyKeys.js';
import { Migration0003SagaFaultPlan } from './Migration0003SagaFaultPlan.js';
import { Migration0004SagaTimers } from './Migration0004SagaTimers.js';
import { Migration0005OutboxHoldsUnsent } from './Migration0005OutboxHoldsUnsent.js';
import { Migration0006LeanSaga } from './Migration0006LeanSaga.js';
import { Migration0008HistoryRetention } from './Migration0008HistoryRetention.js';
import { Migration0009SagaTraceContext } from './Migration0009SagaTraceContext.js';
import { Migration0010SagaTimerIndex } from './Migration0010SagaTimerIndex.js';

/** Every orchestrator migration, in order. */
export const migrations = [
  { name: 'Migration0001Initial', class: Migration0001Initial },
  { name: 'Migration0002IdempotencyKeys', class: Migration0002IdempotencyKeys },
  { name: 'Migration0003SagaFaultPlan', class: Migration0003SagaFaultPlan },
  { name: 'Migration0004SagaTimers', class: Migration0004SagaTimers },
  { name: 'Migration0005OutboxHoldsUnsent', class: Migration0005OutboxHoldsUnsent },
  { name: 'Migration0006LeanSaga', class: Migration0006LeanSaga },
  { name: 'Migration0007DeliveryCounts', class: deliveryCountMigration('orchestrator') },
  { name: 'Migration0008HistoryRetention', class: Migration0008HistoryRetention },
  { name: 'Migration0009SagaTraceContext', class: Migration0009SagaTraceContext },
  { name: 'Migration0010SagaTimerIndex', class: Migration0010SagaTimerIndex },
  { name: 'Migration0011DeliverySurvivals', class: deliverySurvivalMigration('orchestrator') },
];
