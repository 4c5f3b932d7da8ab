import { SERVICES, type ServiceName } from '../contracts/define.js';
import { delayLabel, RETRY_DELAYS_MS } from '../contracts/retry-policy.js';

/**
 * The broker topology, defined once. Each process declares the part it owns on connect (declarations are
 * idempotent when the arguments agree; see declare.ts), and `rabbitmq/definitions.json` is exported from it.
 *
 *   sagaflow.commands (topic) --<service>.*--> <service>.commands      (orchestrator -> service)
 *   sagaflow.replies  (topic) --#-----------> orchestrator.replies     (service -> orchestrator)
 *   sagaflow.queries  (topic) --<service>.*--> <service>.queries       (read-only request/reply)
 *   sagaflow.answers  (direct) --<queue>-----> orchestrator.answers.*  (the answers to queries)
 *   sagaflow.dlx      (direct) --<queue>-----> <queue>.dlq             (dead letters, by source queue)
 *   sagaflow.unroutable (fanout) -----------> sagaflow.unroutable     (alternate exchange: nothing is dropped)
 *   <owner>.requeue   (direct) --<queue>-----> <queue>, <queue>.retry.* (retries and replays, one per owner)
 *
 * A command or reply whose handler failed waits in `<queue>.retry.<delay>` (a TTL queue) and is
 * dead-lettered back into `<queue>` when the delay is over: delayed retries without a plugin. Both ways go
 * through the owner's requeue exchange, never the default exchange: the right to publish there would reach
 * every queue by name.
 */
export const EXCHANGES = {
  commands: 'sagaflow.commands',
  replies: 'sagaflow.replies',
  queries: 'sagaflow.queries',
  answers: 'sagaflow.answers',
  deadLetters: 'sagaflow.dlx',
  unroutable: 'sagaflow.unroutable',
  requeueOf: (owner: Owner) => `${owner}.requeue`,
} as const;

/** Who declares (and alone may configure) an exchange or queue: one broker user per process. */
export type Owner = 'orchestrator' | ServiceName;
export const OWNERS: readonly Owner[] = ['orchestrator', ...SERVICES];

/** A work or retry queue's owner: its name starts with the owner's (`payment.commands.retry.1s`). */
export function ownerOfQueue(queue: string): Owner | undefined {
  const owner = queue.slice(0, queue.indexOf('.'));
  return OWNERS.find((candidate) => candidate === owner);
}

export const QUEUES = {
  commandsOf: (service: string) => `${service}.commands`,
  queriesOf: (service: string) => `${service}.queries`,
  replies: 'orchestrator.replies',
  unroutable: 'sagaflow.unroutable',
  deadLettersOf: (queue: string) => `${queue}.dlq`,
  retryOf: (queue: string, delayMs: number) => `${queue}.retry.${delayLabel(delayMs)}`,
  /** An orchestrator's own queue for the answers to its queries: exclusive, a new name per connection. */
  answersOf: (id: string) => `orchestrator.answers.${id}`,
} as const;

/** Any name `QUEUES.answersOf` makes (a UUID per connection), unanchored: for broker permissions and for checking a query's reply-to. */
export const ANSWERS_QUEUE = /orchestrator\.answers\.[0-9a-f-]{36}/;

export type QueueType = 'quorum' | 'classic';

/**
 * Quorum queues dead-letter a message returned more often than this: a backstop behind MAX_DELIVERIES (at
 * most this much), which dead-letters with its reason first, for a message that kills its consumer before it
 * is counted. RabbitMQ 4 sets 20 when none is given; set here, 3.x and 4.x agree.
 */
export const BROKER_DELIVERY_LIMIT = 20;

/**
 * What a replicated queue needs to lose nothing: its dead letters and expired retries move at least once (the
 * message stays until the target confirms it, through a leader change too), which RabbitMQ allows only with
 * `reject-publish` overflow. Classic queues on one node need none of it.
 */
function replicated(queueType: QueueType): Record<string, unknown> {
  return queueType === 'quorum'
    ? { 'x-delivery-limit': BROKER_DELIVERY_LIMIT, 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' }
    : {};
}

export interface ExchangeSpec {
  name: string;
  type: 'topic' | 'direct' | 'fanout';
  arguments: Record<string, unknown>;
  owner: Owner;
}
export interface QueueSpec {
  name: string;
  /** work: consumed by a process; retry: a delay queue; dead-letter: a `.dlq`; unroutable: the alternate exchange's. */
  role: 'work' | 'retry' | 'dead-letter' | 'unroutable';
  arguments: Record<string, unknown>;
  /** The `.dlq` and unroutable queues are the orchestrator's: its console reads them, and services only write to them. */
  owner: Owner;
}
/** Declared by the queue's owner. */
export interface BindingSpec {
  exchange: string;
  queue: string;
  routingKey: string;
}
export interface Topology {
  exchanges: ExchangeSpec[];
  queues: QueueSpec[];
  bindings: BindingSpec[];
}

/** All exchanges and queues are durable; every work queue dead-letters to `sagaflow.dlx` keyed by its own name. */
export function buildTopology(queueType: QueueType = 'classic'): Topology {
  const withAlternate = { 'alternate-exchange': EXCHANGES.unroutable };
  const orchestrator = 'orchestrator';
  const exchanges: ExchangeSpec[] = [
    { name: EXCHANGES.commands, type: 'topic', arguments: withAlternate, owner: orchestrator },
    { name: EXCHANGES.replies, type: 'topic', arguments: withAlternate, owner: orchestrator },
    { name: EXCHANGES.queries, type: 'topic', arguments: withAlternate, owner: orchestrator },
    { name: EXCHANGES.answers, type: 'direct', arguments: {}, owner: orchestrator },
    { name: EXCHANGES.deadLetters, type: 'direct', arguments: {}, owner: orchestrator },
    { name: EXCHANGES.unroutable, type: 'fanout', arguments: {}, owner: orchestrator },
    // A requeue exchange reaches only its owner's queues: only the owner binds to it.
    ...OWNERS.map((owner): ExchangeSpec => ({ name: EXCHANGES.requeueOf(owner), type: 'direct', arguments: {}, owner })),
  ];
  const queues: QueueSpec[] = [];
  const bindings: BindingSpec[] = [];

  const workQueue = (owner: Owner, name: string, exchange: string, routingKey: string, retries: boolean) => {
    const requeue = EXCHANGES.requeueOf(owner);
    queues.push({
      name,
      role: 'work',
      arguments: {
        'x-queue-type': queueType,
        'x-dead-letter-exchange': EXCHANGES.deadLetters,
        'x-dead-letter-routing-key': name,
        ...replicated(queueType),
      },
      owner,
    });
    bindings.push({ exchange, queue: name, routingKey });
    bindings.push({ exchange: requeue, queue: name, routingKey: name });
    const dlq = QUEUES.deadLettersOf(name);
    // Replicated like the rest on a cluster: a classic queue lives on one node, and while that node is down
    // nobody can even declare it. No delivery limit: the console looks at dead letters by taking them and
    // closing its channel, a return that counts as no failed delivery on RabbitMQ 4 (3.x has no default limit).
    queues.push({ name: dlq, role: 'dead-letter', arguments: { 'x-queue-type': queueType }, owner: orchestrator });
    bindings.push({ exchange: EXCHANGES.deadLetters, queue: dlq, routingKey: name });
    if (!retries) return;
    for (const delayMs of RETRY_DELAYS_MS) {
      const retry = QUEUES.retryOf(name, delayMs);
      queues.push({
        name: retry,
        role: 'retry',
        arguments: {
          'x-queue-type': queueType,
          'x-message-ttl': delayMs,
          // Expired = delay over: back into the work queue through the owner's requeue exchange.
          'x-dead-letter-exchange': requeue,
          'x-dead-letter-routing-key': name,
          ...replicated(queueType),
        },
        owner,
      });
      bindings.push({ exchange: requeue, queue: retry, routingKey: retry });
    }
  };

  for (const service of SERVICES) workQueue(service, QUEUES.commandsOf(service), EXCHANGES.commands, `${service}.*`, true);
  workQueue(orchestrator, QUEUES.replies, EXCHANGES.replies, '#', true);
  // A failed query is answered with an error at once; nobody waits for it to be retried.
  for (const service of ['inventory', 'payment', 'notification'] as const) {
    workQueue(service, QUEUES.queriesOf(service), EXCHANGES.queries, `${service}.*`, false);
  }
  queues.push({ name: QUEUES.unroutable, role: 'unroutable', arguments: { 'x-queue-type': queueType }, owner: orchestrator });
  bindings.push({ exchange: EXCHANGES.unroutable, queue: QUEUES.unroutable, routingKey: '' });

  return { exchanges, queues, bindings };
}
