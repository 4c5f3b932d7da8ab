import { SagaflowClient } from '../../shared/src/testkit/index.js';

/** What global-setup.ts started, as the e2e tests see it. */
export const api = new SagaflowClient(required('SAGAFLOW_URL'));
export const vhost = required('SAGAFLOW_VHOST');
export const amqpUrl = required('SAGAFLOW_AMQP_URL');

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with npm test (global-setup.ts starts the system)`);
  return value;
}

let customer = 0;
/** A customer id no other test uses. */
const run = Math.random().toString(36).slice(2, 8);
export const newCustomer = () => `customer-${run}-${++customer}`;
