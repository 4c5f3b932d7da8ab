import amqplib, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { eventually, type ProcessName, SagaflowClient } from '../../shared/src/testkit/index.js';
import { QUEUES } from '../../shared/src/topology/topology.js';

/** What global-setup.ts started, as the e2e tests see it. */
/** The API as an operator (who may do everything); `api.as(clientKey)` for the client role. */
export const api = new SagaflowClient(required('SAGAFLOW_URL'), required('SAGAFLOW_OPERATOR_KEY'));
/** Every process's HTTP base URL (health, metrics), by name. */
export const processUrls: Record<ProcessName, string> = JSON.parse(required('SAGAFLOW_URLS'));
export const clientKey = required('SAGAFLOW_CLIENT_KEY');
export const vhost = required('SAGAFLOW_VHOST');
export const amqpUrl = required('SAGAFLOW_AMQP_URL');
/** How each process logs in: its own broker user and database role. */
export const processAmqpUrls: Record<ProcessName, string> = JSON.parse(required('SAGAFLOW_PROCESS_AMQP_URLS'));
export const processDatabaseUrls: Record<ProcessName, string> = JSON.parse(required('SAGAFLOW_PROCESS_DATABASE_URLS'));

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with npm test (global-setup.ts starts the system)`);
  return value;
}

let customer = 0;
/** A customer id no other test uses. */
const run = Math.random().toString(36).slice(2, 8);
export const newCustomer = () => `customer-${run}-${++customer}`;

/** A channel on the test system's vhost for one suite: opened before its tests, closed after them. */
export function openSuiteChannel(): { channel: Channel } {
  const holder = {} as { channel: Channel; connection: ChannelModel };
  beforeAll(async () => {
    holder.connection = await amqplib.connect(amqpUrl);
    holder.channel = await holder.connection.createChannel();
  });
  afterAll(async () => {
    await holder.connection?.close();
  });
  return holder;
}

/** Takes messages off `queue`'s .dlq until the one with `messageId` shows up (the others are dropped). */
export function takeDeadLetter(channel: Channel, queue: string, messageId: string): Promise<GetMessage> {
  const dlq = QUEUES.deadLettersOf(queue);
  return eventually(
    async () => {
      const message = await channel.get(dlq, { noAck: true });
      return message && message.properties.messageId === messageId ? message : undefined;
    },
    { what: `message ${messageId} in ${dlq}`, intervalMs: 20 },
  );
}
