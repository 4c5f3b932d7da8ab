// rabbitmq/definitions.json is generated (npm run topology:export) and checked in for the compose broker.
// These checks keep it in step with the topology in shared/ and with the user the processes log in as.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { toDefinitions } from '../shared/src/topology/definitions.js';
import { buildTopology, EXCHANGES } from '../shared/src/topology/topology.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const fileText = readFileSync(`${root}rabbitmq/definitions.json`, 'utf8');
const definitions = JSON.parse(fileText);

type Queue = { name: string; arguments: Record<string, unknown> };
type Binding = { source: string; destination: string; routing_key: string };

/** rabbit_password_hashing_sha256, recomputed independently: base64(salt ++ sha256(salt ++ password)). */
function verifyPassword(passwordHash: string, password: string): boolean {
  const bytes = Buffer.from(passwordHash, 'base64');
  const salt = bytes.subarray(0, 4);
  const digest = createHash('sha256').update(Buffer.concat([salt, Buffer.from(password, 'utf8')])).digest();
  return bytes.length === 36 && digest.equals(bytes.subarray(4));
}

describe('rabbitmq/definitions.json', () => {
  test('is exactly what scripts/export-definitions.mjs produces now (re-run npm run topology:export if not)', () => {
    // The script reads shared/dist, which `npm test` builds first.
    const printed = execFileSync(process.execPath, [`${root}scripts/export-definitions.mjs`, '--print'], { encoding: 'utf8' });
    expect(printed).toBe(fileText);
  });

  test('matches the topology in shared/src, with quorum queues on vhost /', () => {
    const salt = Buffer.from(definitions.users[0].password_hash, 'base64').subarray(0, 4);
    const expected = toDefinitions(buildTopology('quorum'), '/', { name: 'sagaflow', password: 'sagaflow', salt });
    expect(definitions).toEqual(JSON.parse(JSON.stringify(expected)));
  });

  test('brings the sagaflow user, whose password hash verifies', () => {
    expect(definitions.users).toHaveLength(1);
    const [user] = definitions.users;
    expect(user).toMatchObject({ name: 'sagaflow', hashing_algorithm: 'rabbit_password_hashing_sha256' });
    expect(verifyPassword(user.password_hash, 'sagaflow')).toBe(true);
    expect(verifyPassword(user.password_hash, 'guest')).toBe(false);
    expect(definitions.permissions).toEqual([{ user: 'sagaflow', vhost: '/', configure: '.*', write: '.*', read: '.*' }]);
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
    });
    const dlq = queues.find((candidate) => candidate.name === `${name}.dlq`);
    expect(dlq?.arguments).toEqual({ 'x-queue-type': 'classic' });
    expect(bindings).toContainEqual(
      expect.objectContaining({ source: 'sagaflow.dlx', destination: `${name}.dlq`, routing_key: name }),
    );
  });

  test('every queue but the .dlq ones is quorum, and every exchange and queue is durable', () => {
    for (const queue of definitions.queues) {
      expect(queue).toMatchObject({ durable: true, arguments: { 'x-queue-type': queue.name.endsWith('.dlq') ? 'classic' : 'quorum' } });
    }
    for (const exchange of definitions.exchanges) expect(exchange.durable).toBe(true);
  });
});
