import { createHash } from 'node:crypto';
import type { Topology } from './topology.js';

export interface DefinitionsUser {
  name: string;
  password: string;
  /** Fixed so that the exported file is reproducible (and checked in). */
  salt: Buffer;
}

/** RabbitMQ's rabbit_password_hashing_sha256: base64(salt ++ sha256(salt ++ password)). */
export function rabbitPasswordHash(password: string, salt: Buffer): string {
  const digest = createHash('sha256').update(Buffer.concat([salt, Buffer.from(password, 'utf8')])).digest();
  return Buffer.concat([salt, digest]).toString('base64');
}

/**
 * The topology in the format of RabbitMQ's definitions file, loaded at boot by the compose broker.
 * Loading definitions skips the broker's default user, so the file brings its own.
 */
export function toDefinitions(topology: Topology, vhost: string, user: DefinitionsUser) {
  return {
    users: [
      {
        name: user.name,
        password_hash: rabbitPasswordHash(user.password, user.salt),
        hashing_algorithm: 'rabbit_password_hashing_sha256',
        tags: ['administrator'],
        limits: {},
      },
    ],
    vhosts: [{ name: vhost }],
    permissions: [{ user: user.name, vhost, configure: '.*', write: '.*', read: '.*' }],
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
