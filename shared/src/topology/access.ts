import { COMMANDS, QUERIES } from '../contracts/index.js';
import { replyType } from '../contracts/replies.js';
import { ANSWERS_QUEUE, EXCHANGES, type Owner, OWNERS, QUEUES, type Topology } from './topology.js';

/**
 * What each process does on the broker, and the least rights that allow it. Each process logs in as a
 * user of its own (see README, Security): it configures only what it owns, publishes only where it must,
 * and reads only its own queues. Everything here is derived from the topology and the message contracts.
 */

/** What a process publishes to, by exchange (with the routing keys it uses on topic exchanges), and the queues it reads. */
export interface BrokerUse {
  publishes: { exchange: string; routingKeys?: string[] }[];
  reads: string[];
}

export function brokerUseOf(owner: Owner, topology: Topology): BrokerUse {
  const owned = topology.queues.filter((queue) => queue.owner === owner);
  // Whoever consumes a work queue dead-letters to sagaflow.dlx, and parks retries through its requeue exchange.
  const publishes: BrokerUse['publishes'] = owned.some((queue) => queue.role === 'work')
    ? [{ exchange: EXCHANGES.deadLetters }, { exchange: EXCHANGES.requeueOf(owner) }]
    : [];
  // Its own work queues; the orchestrator also every .dlq (it owns them), for the console.
  const reads = owned.filter((queue) => queue.role === 'work' || queue.role === 'dead-letter').map((queue) => queue.name);
  if (owner === 'orchestrator') {
    publishes.push(
      { exchange: EXCHANGES.commands, routingKeys: [...COMMANDS.keys()] },
      { exchange: EXCHANGES.queries, routingKeys: [...QUERIES.keys()] },
      // The console's replays, into any work queue.
      ...OWNERS.filter((other) => other !== owner).map((other) => ({ exchange: EXCHANGES.requeueOf(other) })),
    );
  } else {
    const replies = [...COMMANDS.values()].filter((command) => command.service === owner).flatMap((command) => [replyType(command, 'succeeded'), replyType(command, 'failed')]);
    publishes.push({ exchange: EXCHANGES.replies, routingKeys: replies });
    if (owned.some((queue) => queue.name === QUEUES.queriesOf(owner))) publishes.push({ exchange: EXCHANGES.answers });
  }
  return { publishes, reads };
}

/** A user's rights in its vhost (RabbitMQ regexes over exchange and queue names), and per topic exchange over routing keys. */
export interface BrokerPermissions {
  configure: string;
  write: string;
  read: string;
  topics: { exchange: string; write: string; read: string }[];
}

/**
 * RabbitMQ checks: configure to declare or delete; write on an exchange to publish to it, on a queue to bind
 * it, on the exchanges named as a queue's dead-letter or an exchange's alternate exchange; read on a queue to
 * consume it or to declare it with a dead-letter exchange, on an exchange to bind from it or to declare it
 * with an alternate exchange. Topic permissions then check the routing keys published to, and bound with,
 * on topic exchanges.
 */
export function brokerPermissions(owner: Owner, topology: Topology): BrokerPermissions {
  const exchanges = topology.exchanges.filter((exchange) => exchange.owner === owner);
  const queues = topology.queues.filter((queue) => queue.owner === owner);
  const bindings = topology.bindings.filter((binding) => queues.some((queue) => queue.name === binding.queue));
  const use = brokerUseOf(owner, topology);
  const deadLetterExchanges = queues.map((queue) => queue.arguments['x-dead-letter-exchange']).filter((name): name is string => typeof name === 'string');
  const alternates = exchanges.map((exchange) => exchange.arguments['alternate-exchange']).filter((name): name is string => typeof name === 'string');
  // The orchestrator's answers queues are made per connection (query-client.ts), bound to sagaflow.answers.
  const answers = owner === 'orchestrator' ? [ANSWERS_QUEUE] : [];
  const answersSource = owner === 'orchestrator' ? [EXCHANGES.answers] : [];

  const topics = topology.exchanges
    .filter((exchange) => exchange.type === 'topic')
    .map((exchange) => ({
      exchange: exchange.name,
      write: use.publishes.find((publish) => publish.exchange === exchange.name)?.routingKeys ?? [],
      read: bindings.filter((binding) => binding.exchange === exchange.name).map((binding) => binding.routingKey),
    }))
    .filter((topic) => topic.write.length || topic.read.length)
    .map((topic) => ({ exchange: topic.exchange, write: anyOf(topic.write), read: anyOf(topic.read) }));

  return {
    configure: anyOf([...exchanges.map((exchange) => exchange.name), ...queues.map((queue) => queue.name), ...answers]),
    write: anyOf([...use.publishes.map((publish) => publish.exchange), ...bindings.map((binding) => binding.queue), ...deadLetterExchanges, ...alternates, ...answers]),
    read: anyOf([
      ...use.reads,
      ...queues.filter((queue) => queue.arguments['x-dead-letter-exchange'] !== undefined).map((queue) => queue.name),
      ...bindings.map((binding) => binding.exchange),
      ...exchanges.filter((exchange) => exchange.arguments['alternate-exchange'] !== undefined).map((exchange) => exchange.name),
      ...answers,
      ...answersSource,
    ]),
    topics,
  };
}

/** `^(a|b)$` over exact names (escaped) and patterns; `^$` for none, which matches no exchange or queue. */
function anyOf(entries: (string | RegExp)[]): string {
  const sources = [...new Set(entries.map((entry) => (typeof entry === 'string' ? entry.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : entry.source)))].sort();
  return sources.length ? `^(${sources.join('|')})$` : '^$';
}
