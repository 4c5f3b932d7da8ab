import { InventoryCommands, InventoryQueries } from './inventory.js';
import { NotificationCommands, NotificationQueries } from './notification.js';
import { OrderCommands } from './order.js';
import { PaymentCommands, PaymentQueries } from './payment.js';
import type { CommandContract, QueryContract } from './define.js';

export * from './canonical-json.js';
export * from './define.js';
export * from './envelope.js';
export * from './inventory.js';
export * from './notification.js';
export * from './order.js';
export * from './payment.js';
export * from './replies.js';
export * from './retry-policy.js';
export * from './fault-plan.js';
export * from './saga-status.js';

/** Every command and query, by message type: the one registry consumers validate against. */
export const COMMANDS: ReadonlyMap<string, CommandContract> = new Map(
  [OrderCommands, InventoryCommands, PaymentCommands, NotificationCommands].flatMap((group) =>
    Object.values(group).map((contract) => [contract.type, contract] as const),
  ),
);
export const QUERIES: ReadonlyMap<string, QueryContract> = new Map(
  [InventoryQueries, PaymentQueries, NotificationQueries].flatMap((group) =>
    Object.values(group).map((contract) => [contract.type, contract] as const),
  ),
);
