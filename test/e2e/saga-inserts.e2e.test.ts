// Sagas started in the same turn of the event loop (concurrent POSTs) are inserted by one statement, one
// commit; a saga the database refuses must fail alone, its neighbours started all the same. Driven through
// a second engine on the test system's database and broker: the system's orchestrator runs the sagas on.
import { type AmqpConnectionManager } from 'amqp-connection-manager';
import pino from 'pino';
import { orderSaga } from '../../orchestrator/src/order-saga/order-saga.definition.js';
import { SagaEngine } from '../../orchestrator/src/saga-engine/saga-engine.js';
import { SagaRepository } from '../../orchestrator/src/saga-engine/saga-repository.js';
import { newMessageId } from '../../shared/src/contracts/envelope.js';
import { Database } from '../../shared/src/database/database.js';
import { connectBroker } from '../../shared/src/messaging/connection.js';
import { Publisher } from '../../shared/src/messaging/publisher.js';
import { query } from '../../shared/src/testkit/index.js';
import { amqpUrl, api } from './context.js';

const databaseUrl = process.env.SAGAFLOW_DATABASE_URL!;
const logger = pino({ level: 'silent' });
let connection: AmqpConnectionManager;
let db: Database;
let engine: SagaEngine;

beforeAll(async () => {
  connection = connectBroker(amqpUrl, 'saga-inserts-test', 'publish', logger);
  const publisher = new Publisher(connection, 'saga-inserts-test');
  await publisher.waitForConnect();
  db = new Database(databaseUrl, 2, logger);
  engine = new SagaEngine(new SagaRepository(db, publisher, logger), logger);
  engine.register(orderSaga);
});

afterAll(async () => {
  await connection?.close();
  await db?.onApplicationShutdown();
});

/** Starts orders in one synchronous go (one turn of the event loop), as concurrent requests would. */
const startAll = (customers: string[]) =>
  Promise.allSettled(
    customers.map((customerId) => {
      const orderId = newMessageId();
      return engine.start(orderSaga.name, {
        businessKey: orderId,
        correlationId: orderId,
        data: { orderId, customerId, items: [{ sku: 'SKU-MUG', quantity: 1 }], paymentMethod: 'tok_visa', total: null, currency: null },
      });
    }),
  );

/**
 * The transaction that inserted each saga (rows of one statement share it), read off its first history row:
 * the saga row itself is soon updated by the running orchestrator, whose batch may update both at once.
 */
const writers = async (sagaIds: string[]) =>
  (await query<{ xmin: string }>(databaseUrl, 'select xmin::text from orchestrator.saga_history where saga_id = any($1::uuid[]) and seq = 1', [sagaIds])).map((row) => row.xmin);

test('sagas started together are inserted by one statement, and each one runs', async () => {
  const results = await startAll(['together-1', 'together-2', 'together-3']);
  const sagas = results.map((result) => (result.status === 'fulfilled' ? result.value : null));
  expect(sagas.every(Boolean)).toBe(true);
  expect(new Set(await writers(sagas.map((saga) => saga!.id))).size).toBe(1);
  const finals = await Promise.all(sagas.map((saga) => api.awaitFinal(saga!.businessKey)));
  expect(finals.map((order) => order.status)).toEqual(['CONFIRMED', 'CONFIRMED', 'CONFIRMED']);
});

test('a saga the database refuses fails alone; the ones started with it are inserted one by one and run', async () => {
  // jsonb cannot hold a NUL: the statement carrying it fails.
  const results = await startAll(['beside-1', 'nul\u0000', 'beside-2']);
  expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  const sagas = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  expect(new Set(await writers(sagas.map((saga) => saga.id))).size).toBe(2);
  const finals = await Promise.all(sagas.map((saga) => api.awaitFinal(saga.businessKey)));
  expect(finals.map((order) => order.status)).toEqual(['CONFIRMED', 'CONFIRMED']);
});
