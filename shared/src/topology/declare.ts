import type { Channel, ChannelModel } from 'amqplib';
import { brokerUseOf } from './access.js';
import type { Owner, Topology } from './topology.js';

/** What one process declares, and what it waits for others to declare first. */
export interface TopologyPart extends Topology {
  /** Exchanges it binds from or publishes to, and the `.dlq` of its queues, that others own. */
  awaits: { exchanges: string[]; queues: string[] };
}

/** The exchanges and queues `owner` owns, with the bindings of its queues. */
export function partOf(owner: Owner, topology: Topology): TopologyPart {
  const exchanges = topology.exchanges.filter((exchange) => exchange.owner === owner);
  const queues = topology.queues.filter((queue) => queue.owner === owner);
  const bindings = topology.bindings.filter((binding) => queues.some((queue) => queue.name === binding.queue));
  const ownsExchange = (name: string) => exchanges.some((exchange) => exchange.name === name);
  const used = [...bindings.map((binding) => binding.exchange), ...brokerUseOf(owner, topology).publishes.map((publish) => publish.exchange)];
  // The orchestrator's replays to the services' requeue exchanges run on a channel of their own: not awaited.
  const awaits = owner === 'orchestrator' ? [] : [...new Set(used)].filter((name) => !ownsExchange(name));
  const deadLetterQueues = topology.queues
    .filter((queue) => queue.role === 'dead-letter' && queue.owner !== owner)
    .filter((dlq) => topology.bindings.some((binding) => binding.queue === dlq.name && queues.some((queue) => queue.name === binding.routingKey)))
    .map((queue) => queue.name);
  return { exchanges, queues, bindings, awaits: { exchanges: awaits, queues: deadLetterQueues } };
}

/** Declares every exchange, queue and binding given; safe to run on every (re)connect. */
export async function declareTopology(channel: Channel, topology: Topology): Promise<void> {
  for (const exchange of topology.exchanges) {
    await channel.assertExchange(exchange.name, exchange.type, { durable: true, arguments: exchange.arguments });
  }
  for (const queue of topology.queues) {
    await channel.assertQueue(queue.name, { durable: true, arguments: queue.arguments });
  }
  for (const binding of topology.bindings) {
    await channel.bindQueue(binding.queue, binding.exchange, binding.routingKey);
  }
}

/**
 * Resolves once the exchanges and queues another process declares exist, checking every second, so a
 * process may start before their owner does. A passive check of something missing closes its channel,
 * so each round runs on a throwaway one. Returns early if the connection goes (setup runs again on reconnect).
 */
export async function awaitDeclared(
  connection: ChannelModel,
  awaits: TopologyPart['awaits'],
  onWait: (missing: string, waitedSeconds: number) => void,
): Promise<void> {
  if (!awaits.exchanges.length && !awaits.queues.length) return;
  for (let round = 0; ; round++) {
    let channel: Channel;
    try {
      channel = await connection.createChannel();
    } catch {
      return;
    }
    channel.on('error', () => undefined);
    let missing: string | undefined;
    try {
      for (const name of awaits.exchanges) {
        missing = name;
        await channel.checkExchange(name);
      }
      for (const name of awaits.queues) {
        missing = name;
        await channel.checkQueue(name);
      }
      missing = undefined;
    } catch (error) {
      if ((error as { code?: number }).code !== 404) return;
    } finally {
      await channel.close().catch(() => undefined);
    }
    if (missing === undefined) return;
    if (round % 30 === 0) onWait(missing, round);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}
