/** The five Sagaflow processes, where their compiled entry points are, their default ports and Node flags of their own. */
export const PROCESSES = [
  // Without Maglev (V8's mid-tier compiler) the orchestrator peaks about 10 MB lower for about 7% more CPU of
  // its own (docs/performance.md): it alone came near 150 MB; TurboFan still optimizes what is hot.
  { name: 'orchestrator', entry: 'orchestrator/dist/main.js', port: 3000, nodeFlags: ['--no-maglev'] },
  { name: 'order', entry: 'services/order/dist/main.js', port: 3101 },
  { name: 'inventory', entry: 'services/inventory/dist/main.js', port: 3102 },
  { name: 'payment', entry: 'services/payment/dist/main.js', port: 3103 },
  { name: 'notification', entry: 'services/notification/dist/main.js', port: 3104 },
] as const;

export type ProcessName = (typeof PROCESSES)[number]['name'];
