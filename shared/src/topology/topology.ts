import { SERVICES } from '../contracts/define.js';
import { delayLabel, RETRY_DELAYS_MS } from '../contracts/retry-policy.js';

/**
 * The broker topology, defined once. Every process declares all of it on connect (declarations are
 * idempotent when the arguments agree), and `rabbitmq/definitions.json` is exported from it.
 *
 *   sagaflow.commands (topic) --<service>.*--> <service>.commands      (orchestrator -> service)
 *   sagaflow.replies  (topic) --#-----------> orchestrator.replies     (service -> orchestrator)
 *   sagaflow.queries  (topic) --<service>.*--> <service>.queries       (read-only request/reply)
 *   sagaflow.dlx      (direct) --<queue>-----> <queue>.dlq             (dead letters, by source queue)
 *   sagaflow.unroutable (fanout) -----------> sagaflow.unroutable     (alternate exchange: nothing is dropped)
 *
 * A command or reply whose handler failed waits in `<queue>.retry.<delay>` (a TTL queue, published to
 * directly) and is dead-lettered back into `<queue>` when the delay is over: delayed retries without a plugin.
 */
export const EXCHANGES = {
  commands: 'sagaflow.commands',
  replies: 'sagaflow.replies',
  queries: 'sagaflow.queries',
  deadLetters: 'sagaflow.dlx',
  unroutable: 'sagaflow.unroutable',
} as const;

export const QUEUES = {
  commandsOf: (service: string) => `${service}.commands`,
  queriesOf: (service: string) => `${service}.queries`,
  replies: 'orchestrator.replies',
  unroutable: 'sagaflow.unroutable',
  deadLettersOf: (queue: string) => `${queue}.dlq`,
  retryOf: (queue: string, delayMs: number) => `${queue}.retry.${delayLabel(delayMs)}`,
} as const;

export type QueueType = 'quorum' | 'classic';

export interface ExchangeSpec {
  name: string;
  type: 'topic' | 'direct' | 'fanout';
  arguments: Record<string, unknown>;
}
export interface QueueSpec {
  name: string;
  /** work: consumed by a process; retry: a delay queue; dead-letter: a `.dlq`; unroutable: the alternate exchange's. */
  role: 'work' | 'retry' | 'dead-letter' | 'unroutable';
  arguments: Record<string, unknown>;
}
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
  const exchanges: ExchangeSpec[] = [
    { name: EXCHANGES.commands, type: 'topic', arguments: withAlternate },
    { name: EXCHANGES.replies, type: 'topic', arguments: withAlternate },
    { name: EXCHANGES.queries, type: 'topic', arguments: withAlternate },
    { name: EXCHANGES.deadLetters, type: 'direct', arguments: {} },
    { name: EXCHANGES.unroutable, type: 'fanout', arguments: {} },
  ];
  const queues: QueueSpec[] = [];
  const bindings: BindingSpec[] = [];

  const workQueue = (name: string, exchange: string, routingKey: string, retries: boolean) => {
    queues.push({
      name,
      role: 'work',
      arguments: {
        'x-queue-type': queueType,
        'x-dead-letter-exchange': EXCHANGES.deadLetters,
        'x-dead-letter-routing-key': name,
      },
    });
    bindings.push({ exchange, queue: name, routingKey });
    const dlq = QUEUES.deadLettersOf(name);
    // Classic, whatever QUEUE_TYPE says: the console peeks at dead letters (get, then requeue), and a quorum
    // queue's delivery limit (20 by default on RabbitMQ 4) would drop a dead letter looked at too often.
    queues.push({ name: dlq, role: 'dead-letter', arguments: { 'x-queue-type': 'classic' } });
    bindings.push({ exchange: EXCHANGES.deadLetters, queue: dlq, routingKey: name });
    if (!retries) return;
    for (const delayMs of RETRY_DELAYS_MS) {
      queues.push({
        name: QUEUES.retryOf(name, delayMs),
        role: 'retry',
        arguments: {
          'x-queue-type': queueType,
          'x-message-ttl': delayMs,
          // Expired = delay over: back into the work queue through the default exchange.
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': name,
        },
      });
    }
  };

  for (const service of SERVICES) workQueue(QUEUES.commandsOf(service), EXCHANGES.commands, `${service}.*`, true);
  workQueue(QUEUES.replies, EXCHANGES.replies, '#', true);
  // A failed query is answered with an error at once; nobody waits for it to be retried.
  for (const service of ['inventory', 'payment', 'notification']) {
    workQueue(QUEUES.queriesOf(service), EXCHANGES.queries, `${service}.*`, false);
  }
  queues.push({ name: QUEUES.unroutable, role: 'unroutable', arguments: { 'x-queue-type': queueType } });
  bindings.push({ exchange: EXCHANGES.unroutable, queue: QUEUES.unroutable, routingKey: '' });

  return { exchanges, queues, bindings };
}
