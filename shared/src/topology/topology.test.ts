// The broker topology is the safety net of the whole saga: a command that is rejected, unroutable or
// failing must end up somewhere visible (a .dlq or sagaflow.unroutable), never silently dropped.
import { BROKER_DELIVERY_LIMIT, buildTopology, EXCHANGES, OWNERS, ownerOfQueue, QUEUES, type QueueType } from './topology.js';

describe.each<QueueType>(['quorum', 'classic'])('buildTopology(%s)', (queueType) => {
  const topology = buildTopology(queueType);
  const queueNamed = (name: string) => topology.queues.find((queue) => queue.name === name);
  // Work queues are the ones consumers take messages from; dead-letter, retry and unroutable queues are parking lots.
  const workQueues = topology.queues.filter((queue) => queue.role === 'work');

  test('has a work queue for every service command queue, the replies and the three query queues', () => {
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

  test('each service command queue is bound on sagaflow.commands by its service prefix; replies take everything', () => {
    for (const service of ['order', 'inventory', 'payment', 'notification']) {
      expect(topology.bindings).toContainEqual({ exchange: 'sagaflow.commands', queue: `${service}.commands`, routingKey: `${service}.*` });
    }
    expect(topology.bindings).toContainEqual({ exchange: 'sagaflow.replies', queue: 'orchestrator.replies', routingKey: '#' });
  });

  test('every work queue dead-letters to sagaflow.dlx keyed by its own name', () => {
    for (const queue of workQueues) {
      expect(queue.arguments).toMatchObject({
        'x-dead-letter-exchange': 'sagaflow.dlx',
        'x-dead-letter-routing-key': queue.name,
      });
    }
  });

  test('every work queue has a .dlq bound on sagaflow.dlx with the work queue name as key', () => {
    for (const queue of workQueues) {
      const dlq = `${queue.name}.dlq`;
      expect(queueNamed(dlq)).toBeDefined();
      // Exactly one binding, so dead letters of one queue never land in another queue's .dlq.
      expect(topology.bindings.filter((binding) => binding.queue === dlq)).toEqual([{ exchange: 'sagaflow.dlx', queue: dlq, routingKey: queue.name }]);
    }
  });

  test('dead-letter queues do not dead-letter themselves (no loops, nothing dropped)', () => {
    for (const queue of topology.queues.filter((candidate) => candidate.name.endsWith('.dlq'))) {
      expect(queue.arguments).not.toHaveProperty('x-dead-letter-exchange');
    }
  });

  test('the commands, replies and queries exchanges fall back to sagaflow.unroutable', () => {
    for (const name of ['sagaflow.commands', 'sagaflow.replies', 'sagaflow.queries']) {
      const exchange = topology.exchanges.find((candidate) => candidate.name === name);
      expect(exchange).toBeDefined();
      expect(exchange!.type).toBe('topic');
      expect(exchange!.arguments['alternate-exchange']).toBe('sagaflow.unroutable');
    }
  });

  test('sagaflow.unroutable is a fanout exchange bound to the sagaflow.unroutable queue', () => {
    expect(topology.exchanges.find((exchange) => exchange.name === EXCHANGES.unroutable)).toMatchObject({ type: 'fanout' });
    expect(queueNamed('sagaflow.unroutable')).toBeDefined();
    expect(topology.bindings).toContainEqual({ exchange: 'sagaflow.unroutable', queue: 'sagaflow.unroutable', routingKey: '' });
  });

  test('sagaflow.dlx is a direct exchange, so a dead letter goes only to its own .dlq', () => {
    expect(topology.exchanges.find((exchange) => exchange.name === EXCHANGES.deadLetters)).toMatchObject({ type: 'direct' });
  });

  test(`every queue is declared with x-queue-type ${queueType}; the .dlq ones have no delivery limit`, () => {
    expect(topology.queues.length).toBeGreaterThan(0);
    for (const queue of topology.queues) expect(queue.arguments['x-queue-type']).toBe(queueType);
    for (const queue of topology.queues.filter((candidate) => candidate.role === 'dead-letter')) expect(queue.arguments).not.toHaveProperty('x-delivery-limit');
  });

  test(queueType === 'quorum'
    ? 'work and retry queues have a broker delivery limit and dead-letter at least once (reject-publish overflow)'
    : 'classic queues carry no quorum-only arguments', () => {
    for (const queue of topology.queues.filter((candidate) => candidate.role === 'work' || candidate.role === 'retry')) {
      const replicated = { 'x-delivery-limit': BROKER_DELIVERY_LIMIT, 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' };
      if (queueType === 'quorum') expect(queue.arguments).toMatchObject(replicated);
      else for (const key of Object.keys(replicated)) expect(queue.arguments).not.toHaveProperty(key);
    }
  });

  test('no work, dead-letter or unroutable queue expires or caps messages (that would silently drop saga commands)', () => {
    for (const queue of topology.queues.filter((candidate) => candidate.role !== 'retry')) {
      expect(queue.arguments).not.toHaveProperty('x-message-ttl');
      expect(queue.arguments).not.toHaveProperty('x-max-length');
      expect(queue.arguments).not.toHaveProperty('x-max-length-bytes');
      expect(queue.arguments).not.toHaveProperty('x-expires');
    }
  });

  test('commands and replies have a delay queue per retry delay that expires back into them; queries have none', () => {
    for (const queue of ['order.commands', 'inventory.commands', 'payment.commands', 'notification.commands', 'orchestrator.replies']) {
      for (const delayMs of [250, 1_000, 5_000, 30_000, 120_000]) {
        const retry = topology.queues.find((candidate) => candidate.role === 'retry' && candidate.arguments['x-dead-letter-routing-key'] === queue && candidate.arguments['x-message-ttl'] === delayMs);
        const requeue = `${queue.split('.')[0]}.requeue`;
        expect(retry?.arguments).toMatchObject({ 'x-dead-letter-exchange': requeue, 'x-queue-type': queueType });
        expect(retry?.name).toBe(QUEUES.retryOf(queue, delayMs));
        // Parked through the owner's requeue exchange, and back into the work queue through it.
        expect(topology.bindings).toContainEqual({ exchange: requeue, queue: retry!.name, routingKey: retry!.name });
        expect(topology.bindings).toContainEqual({ exchange: requeue, queue, routingKey: queue });
      }
    }
    expect(topology.queues.filter((queue) => queue.role === 'retry' && String(queue.name).includes('.queries'))).toEqual([]);
    expect(QUEUES.retryOf('payment.commands', 250)).toBe('payment.commands.retry.250ms');
    expect(QUEUES.retryOf('payment.commands', 30_000)).toBe('payment.commands.retry.30s');
  });

  test('every binding points at a declared exchange and queue', () => {
    const exchanges = new Set(topology.exchanges.map((exchange) => exchange.name));
    const queues = new Set(topology.queues.map((queue) => queue.name));
    for (const binding of topology.bindings) {
      expect(exchanges).toContain(binding.exchange);
      expect(queues).toContain(binding.queue);
    }
  });
});

test('buildTopology defaults to classic queues (QUEUE_TYPE=quorum for a cluster)', () => {
  const queues = buildTopology().queues;
  expect(queues.every((queue) => queue.arguments['x-queue-type'] === 'classic')).toBe(true);
});

test('each exchange and queue has one owner; a requeue exchange reaches only its owner\'s queues', () => {
  const topology = buildTopology();
  for (const owner of OWNERS) {
    const requeue = topology.exchanges.find((exchange) => exchange.name === EXCHANGES.requeueOf(owner));
    expect(requeue).toMatchObject({ type: 'direct', owner });
    const reached = topology.bindings.filter((binding) => binding.exchange === requeue!.name).map((binding) => topology.queues.find((queue) => queue.name === binding.queue));
    expect(reached.length).toBeGreaterThan(0);
    expect(reached.every((queue) => queue?.owner === owner && ownerOfQueue(queue.name) === owner)).toBe(true);
  }
  // The console reads every parking queue, so the orchestrator owns them; a service owns its work and delay queues.
  for (const queue of topology.queues) {
    expect(queue.owner).toBe(queue.role === 'dead-letter' || queue.role === 'unroutable' ? 'orchestrator' : ownerOfQueue(queue.name));
  }
});
