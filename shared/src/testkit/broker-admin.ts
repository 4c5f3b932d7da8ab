import type { BrokerPermissions } from '../topology/access.js';

/** A small client of the RabbitMQ management HTTP API (port 15672), for tests and tooling. */
export class BrokerAdmin {
  private readonly nodes: { base: string; auth: string }[];

  /** One URL, or a cluster's nodes: a request goes to the first that answers. */
  constructor(managementUrls: string | string[] = process.env.RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672') {
    this.nodes = (typeof managementUrls === 'string' ? [managementUrls] : managementUrls).map((text) => {
      const url = new URL(text);
      const auth = 'Basic ' + Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64');
      url.username = '';
      url.password = '';
      return { base: url.toString().replace(/\/$/, ''), auth };
    });
  }

  async createVhost(vhost: string, user = 'guest'): Promise<void> {
    await this.request('PUT', `/api/vhosts/${encodeURIComponent(vhost)}`, {});
    await this.request('PUT', `/api/permissions/${encodeURIComponent(vhost)}/${encodeURIComponent(user)}`, {
      configure: '.*',
      write: '.*',
      read: '.*',
    });
  }

  async deleteVhost(vhost: string): Promise<void> {
    await this.request('DELETE', `/api/vhosts/${encodeURIComponent(vhost)}`, undefined, [404]);
  }

  /** A user without tags (no management access), with only the given rights in `vhost`. */
  async createUser(vhost: string, user: string, password: string, permissions: BrokerPermissions): Promise<void> {
    const name = encodeURIComponent(user);
    await this.request('PUT', `/api/users/${name}`, { password, tags: '' });
    const { configure, write, read } = permissions;
    await this.request('PUT', `/api/permissions/${encodeURIComponent(vhost)}/${name}`, { configure, write, read });
    for (const topic of permissions.topics) await this.request('PUT', `/api/topic-permissions/${encodeURIComponent(vhost)}/${name}`, topic);
  }

  async deleteUser(user: string): Promise<void> {
    await this.request('DELETE', `/api/users/${encodeURIComponent(user)}`, undefined, [404]);
  }

  async queues(vhost: string): Promise<QueueInfo[]> {
    return (await this.request('GET', `/api/queues/${encodeURIComponent(vhost)}`)) as QueueInfo[];
  }

  async queue(vhost: string, name: string): Promise<QueueInfo> {
    return (await this.request('GET', `/api/queues/${encodeURIComponent(vhost)}/${encodeURIComponent(name)}`)) as QueueInfo;
  }

  /** The client connections to a vhost (the management API lists a new one within a few seconds). */
  async connections(vhost: string): Promise<{ name: string; state?: string; client_properties?: { connection_name?: string } }[]> {
    return (await this.request('GET', `/api/vhosts/${encodeURIComponent(vhost)}/connections`)) as { name: string }[];
  }

  /** Closes every client connection to a vhost, or those whose client-given name `matches` (simulates a broker-side disconnect). */
  async closeConnections(vhost: string, matches: (name: string) => boolean = () => true): Promise<number> {
    const connections = (await this.connections(vhost)).filter((connection) => matches(connection.client_properties?.connection_name ?? ''));
    await Promise.all(connections.map((connection) => this.request('DELETE', `/api/connections/${encodeURIComponent(connection.name)}`, undefined, [404])));
    return connections.length;
  }

  private async request(method: string, path: string, body?: unknown, okStatuses: number[] = []): Promise<unknown> {
    let response: Response | undefined;
    let unreachable: Error | undefined;
    for (const { base, auth } of this.nodes) {
      try {
        response = await fetch(base + path, {
          method,
          headers: { authorization: auth, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        break;
      } catch (error) {
        const cause = (error as Error).cause as (Error & { code?: string }) | undefined;
        // Refused on a broker that is up: the plugin is off (it ships disabled).
        const hint = cause?.code === 'ECONNREFUSED' ? ': is the plugin on? (`rabbitmq-plugins enable rabbitmq_management`, or set RABBITMQ_MANAGEMENT_URL)' : '';
        unreachable = new Error(`RabbitMQ management API not reachable at ${base} (${cause?.message ?? (error as Error).message})${hint}`, { cause: error });
      }
    }
    if (!response) throw unreachable!;
    if (!response.ok && !okStatuses.includes(response.status)) {
      throw new Error(`RabbitMQ management API ${method} ${path}: ${response.status} ${await response.text()}`);
    }
    const text = await response.text();
    return text ? JSON.parse(text) : undefined;
  }
}

export interface QueueInfo {
  name: string;
  /** Quorum queues: the node leading it, and the nodes holding a replica. */
  leader?: string;
  members?: string[];
  online?: string[];
  durable: boolean;
  type: string;
  arguments: Record<string, unknown>;
  consumers: number;
  messages: number;
  messages_ready?: number;
  /** Classic queues: the `timestamp` property (seconds) of the message at the head, when it has one. */
  head_message_timestamp?: number | null;
}
