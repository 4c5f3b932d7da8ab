// The rights each process's broker user gets (test/e2e/broker-permissions.e2e.test.ts checks them on the
// real broker, and every e2e suite runs the processes with them).
import { brokerPermissions, brokerUseOf } from './access.js';
import { partOf } from './declare.js';
import { buildTopology, EXCHANGES, OWNERS, QUEUES } from './topology.js';

const topology = buildTopology();
const matches = (regex: string, name: string) => new RegExp(regex).test(name);

describe.each(OWNERS)('%s', (owner) => {
  const permissions = brokerPermissions(owner, topology);
  const part = partOf(owner, topology);

  test('may configure exactly what it declares, and nothing of anyone else', () => {
    for (const { name } of [...part.exchanges, ...part.queues]) expect([name, matches(permissions.configure, name)]).toEqual([name, true]);
    for (const { name } of [...topology.exchanges, ...topology.queues].filter((resource) => resource.owner !== owner)) {
      expect([name, matches(permissions.configure, name)]).toEqual([name, false]);
    }
  });

  test('has no right on the default exchange (it would reach every queue by name) and no catch-all', () => {
    for (const regex of [permissions.configure, permissions.write, permissions.read]) {
      expect(matches(regex, 'amq.default')).toBe(false);
      expect(regex).not.toContain('.*');
    }
  });

  test('may write to where it publishes and read the queues it consumes', () => {
    const use = brokerUseOf(owner, topology);
    for (const { exchange } of use.publishes) expect(matches(permissions.write, exchange)).toBe(true);
    for (const queue of use.reads) expect(matches(permissions.read, queue)).toBe(true);
  });
});

test('only the orchestrator may publish commands; a service publishes only its own replies', () => {
  const may = (owner: (typeof OWNERS)[number], exchange: string, routingKey: string) => {
    const permissions = brokerPermissions(owner, topology);
    const topic = permissions.topics.find((candidate) => candidate.exchange === exchange);
    return matches(permissions.write, exchange) && (!topic || matches(topic.write, routingKey));
  };
  expect(may('orchestrator', EXCHANGES.commands, 'order.cancel')).toBe(true);
  expect(may('payment', EXCHANGES.commands, 'order.cancel')).toBe(false);
  expect(may('payment', EXCHANGES.replies, 'payment.charge.succeeded')).toBe(true);
  expect(may('payment', EXCHANGES.replies, 'inventory.reserve.succeeded')).toBe(false);
  expect(may('orchestrator', EXCHANGES.replies, 'payment.charge.succeeded')).toBe(false);
  // Retries and replays: a service reaches its own queues only, the orchestrator's console every work queue.
  expect(may('payment', EXCHANGES.requeueOf('inventory'), 'inventory.commands')).toBe(false);
  expect(may('orchestrator', EXCHANGES.requeueOf('inventory'), 'inventory.commands')).toBe(true);
});

test('a service binds to the shared exchanges only with its own routing keys, and waits for them', () => {
  const { topics } = brokerPermissions('payment', topology);
  expect(topics.find((topic) => topic.exchange === EXCHANGES.commands)?.read).toBe('^(payment\\.\\*)$');
  expect(partOf('payment', topology).awaits).toEqual({
    exchanges: expect.arrayContaining([EXCHANGES.commands, EXCHANGES.queries, EXCHANGES.replies, EXCHANGES.deadLetters, EXCHANGES.answers]),
    queues: [QUEUES.deadLettersOf('payment.commands'), QUEUES.deadLettersOf('payment.queries')],
  });
  expect(partOf('orchestrator', topology).awaits).toEqual({ exchanges: [], queues: [] });
});
