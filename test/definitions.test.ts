// rabbitmq/definitions.json is generated (npm run topology:export) and checked in for the compose broker.
// These checks keep it in step with the topology in shared/ and with the users the processes log in as.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { brokerPermissions } from '../shared/src/topology/access.js';
import { toDefinitions } from '../shared/src/topology/definitions.js';
import { BROKER_DELIVERY_LIMIT, buildTopology, EXCHANGES, OWNERS } from '../shared/src/topology/topology.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const fileText = readFileSync(`${root}rabbitmq/definitions.json`, 'utf8');
const definitions = JSON.parse(fileText);

type Queue = { name: string; arguments: Record<string, unknown> };
type Binding = { source: string; destination: string; routing_key: string };
type User = { name: string; password_hash: string; tags: string[] };
type Permission = { user: string; vhost: string; configure: string; write: string; read: string };
type TopicPermission = { user: string; vhost: string; exchange: string; write: string; read: string };

describe('rabbitmq/definitions.json', () => {
  test.each([
    ['rabbitmq/definitions.json', '--print'],
    ['postgres/provision.sql', '--print-sql'],
  ])('%s is exactly what scripts/export-definitions.mjs produces now (re-run npm run topology:export if not)', (file, flag) => {
    // The script reads shared/dist, which `npm test` builds first.
    const printed = execFileSync(process.execPath, [`${root}scripts/export-definitions.mjs`, flag], { encoding: 'utf8' });
    expect(printed).toBe(readFileSync(`${root}${file}`, 'utf8'));
  });

  test('matches the topology in shared/src, with quorum queues on vhost /', () => {
    expect(definitions).toEqual(JSON.parse(JSON.stringify(toDefinitions(buildTopology('quorum'), '/'))));
  });

  const users: User[] = definitions.users;
  const permissions: Permission[] = definitions.permissions;
  const topicPermissions: TopicPermission[] = definitions.topic_permissions;

  test('brings a user per process, none an administrator, none with a .* right, each with the rights derived from the topology', () => {
    const processUsers = users.filter((user) => !user.tags.includes('administrator'));
    expect(processUsers.map((user) => user.name).sort()).toEqual([...OWNERS].sort());
    for (const owner of OWNERS) {
      const granted = permissions.filter((permission) => permission.user === owner);
      expect(granted).toHaveLength(1);
      for (const regex of [granted[0].configure, granted[0].write, granted[0].read]) expect(regex).not.toMatch(/\.\*|^$/);
      const { configure, write, read } = brokerPermissions(owner, buildTopology('quorum'));
      expect(granted[0]).toEqual({ user: owner, vhost: '/', configure, write, read });
    }
  });

  test('has topic permissions: a service publishes only its own replies, only the orchestrator publishes commands', () => {
    const topic = (user: string, exchange: string) => topicPermissions.find((candidate) => candidate.user === user && candidate.exchange === exchange);
    expect(new RegExp(topic('payment', EXCHANGES.replies)!.write).test('payment.charge.succeeded')).toBe(true);
    expect(new RegExp(topic('payment', EXCHANGES.replies)!.write).test('inventory.reserve.succeeded')).toBe(false);
    expect(new RegExp(topic('orchestrator', EXCHANGES.commands)!.write).test('order.cancel')).toBe(true);
    for (const service of OWNERS.filter((owner) => owner !== 'orchestrator')) {
      expect(new RegExp(topic(service, EXCHANGES.commands)!.write).test('order.cancel')).toBe(false);
      expect(new RegExp(permissions.find((permission) => permission.user === service)!.write).test(EXCHANGES.commands)).toBe(false);
    }
  });

  test('carries no usable password: compose sets them at start from its env file', () => {
    // An empty hash refuses every login (rabbitmq/start.sh runs rabbitmqctl change_password).
    for (const user of users) expect(user.password_hash).toBe('');
    // The admin is for people (the management UI), not for a process.
    expect(users.filter((user) => user.tags.includes('administrator')).map((user) => user.name)).toEqual(['admin']);
  });

  const queues: Queue[] = definitions.queues;
  const bindings: Binding[] = definitions.bindings;
  // Work queues are the ones consumers take messages from: commands, queries and the orchestrator's replies.
  const workQueues = queues.filter((queue) => /\.(commands|queries|replies)$/.test(queue.name));

  test('has the work queues of every service', () => {
    expect(workQueues.map((queue) => queue.name).sort()).toEqual(
      [
        'inventory.commands',
        'inventory.queries',
        'notification.commands',
        'notification.queries',
        'orchestrator.replies',
        'order.commands',
        'payment.commands',
        'payment.queries',
      ].sort(),
    );
  });

  test.each(workQueues.map((queue) => [queue.name, queue] as const))('%s dead-letters to its .dlq via sagaflow.dlx', (name, queue) => {
    expect(queue.arguments).toMatchObject({
      'x-queue-type': 'quorum',
      'x-dead-letter-exchange': EXCHANGES.deadLetters,
      'x-dead-letter-routing-key': name,
      'x-delivery-limit': BROKER_DELIVERY_LIMIT,
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    });
    const dlq = queues.find((candidate) => candidate.name === `${name}.dlq`);
    expect(dlq?.arguments).toEqual({ 'x-queue-type': 'quorum' });
    expect(bindings).toContainEqual(
      expect.objectContaining({ source: 'sagaflow.dlx', destination: `${name}.dlq`, routing_key: name }),
    );
  });

  test('every queue is quorum, and every exchange and queue is durable', () => {
    for (const queue of definitions.queues) {
      expect(queue).toMatchObject({ durable: true, arguments: { 'x-queue-type': 'quorum' } });
    }
    for (const exchange of definitions.exchanges) expect(exchange.durable).toBe(true);
  });
});
