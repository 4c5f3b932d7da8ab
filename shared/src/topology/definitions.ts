import { brokerPermissions } from './access.js';
import { OWNERS, type Topology } from './topology.js';

/** The person's account for the management UI: every right, and the administrator tag, unlike the processes'. */
export const ADMIN_USER = 'admin';

/**
 * The topology in the format of RabbitMQ's definitions file, loaded at boot by the compose broker, with
 * a user per process (named after it: only the rights it needs, no tags) and the admin. Loading
 * definitions skips the broker's default user. No user has a usable password here (an empty hash
 * refuses every login): compose sets them from its env file at start (rabbitmq/start.sh).
 */
export function toDefinitions(topology: Topology, vhost: string) {
  const access = OWNERS.map((owner) => ({ user: owner, ...brokerPermissions(owner, topology) }));
  const user = (name: string, tags: string[]) => ({ name, password_hash: '', hashing_algorithm: 'rabbit_password_hashing_sha256', tags, limits: {} });
  return {
    users: [user(ADMIN_USER, ['administrator']), ...OWNERS.map((owner) => user(owner, []))],
    vhosts: [{ name: vhost }],
    permissions: [
      { user: ADMIN_USER, vhost, configure: '.*', write: '.*', read: '.*' },
      ...access.map(({ user, configure, write, read }) => ({ user, vhost, configure, write, read })),
    ],
    topic_permissions: access.flatMap(({ user, topics }) => topics.map((topic) => ({ user, vhost, ...topic }))),
    exchanges: topology.exchanges.map((exchange) => ({
      name: exchange.name,
      vhost,
      type: exchange.type,
      durable: true,
      auto_delete: false,
      internal: false,
      arguments: exchange.arguments,
    })),
    queues: topology.queues.map((queue) => ({
      name: queue.name,
      vhost,
      durable: true,
      auto_delete: false,
      arguments: queue.arguments,
    })),
    bindings: topology.bindings.map((binding) => ({
      source: binding.exchange,
      vhost,
      destination: binding.queue,
      destination_type: 'queue',
      routing_key: binding.routingKey,
      arguments: {},
    })),
  };
}
