/** The five Sagaflow processes, where their compiled entry points are, and their default ports. */
export const PROCESSES = [
  { name: 'orchestrator', entry: 'orchestrator/dist/main.js', port: 3000 },
  { name: 'order', entry: 'services/order/dist/main.js', port: 3101 },
  { name: 'inventory', entry: 'services/inventory/dist/main.js', port: 3102 },
  { name: 'payment', entry: 'services/payment/dist/main.js', port: 3103 },
  { name: 'notification', entry: 'services/notification/dist/main.js', port: 3104 },
] as const;

export type ProcessName = (typeof PROCESSES)[number]['name'];
