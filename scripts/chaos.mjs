// `npm run chaos`: a load of orders while, on a seeded schedule, processes are SIGKILLed and restarted,
// broker connections closed and PostgreSQL backends terminated; a share of the orders carry fault plans.
// Then it waits for quiescence and checks the invariants through the HTTP API only, and the goodput: of the
// orders its own card and fault-plan mix expect to confirm, how many did. Exits 1 on a violation.
//
//   npm run chaos -- --orders 400 --rate 8 --seed 42 --faults kill,broker,postgres,plans
//   options: --orders N (400)  --rate orders/s (8)  --seed N (42)  --faults list (kill,broker,postgres,plans;
//            add broker-restart to restart the RabbitMQ node too — it stops every vhost on the machine)
//            --interval ms between disruptions (4000)  --settle-timeout s (180)
//            --profile product|stress: the product's own timers (STEP_TIMEOUT_MS 30 s, SAGA_DEADLINE_MS 5 min), or
//            fast ones that stress the system (5 s, 60 s) (product)
//            --min-goodput: the share of expected-to-confirm orders that must confirm (0.99; 0.95 with stress); cancellations
//            for a timeout or the deadline may be the rest of it, 1% at least
//            --plan-share: the share of orders that carry a fault plan (0.2); a sixth of those crash a service
//            --cluster N: run on a local cluster of N RabbitMQ nodes with quorum queues (docs/scaling.md), where
//            the fault node-loss SIGKILLs one node (every other time the one leading payment.commands) and starts
//            it again --node-down ms later (6000); one node is down at a time
//
//   npm run chaos -- --cluster 3 --faults node-loss,kill,plans --orders 600
import amqplib from 'amqplib';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildTopology, ownerOfQueue, QUEUES } from '../shared/dist/index.js';
import {
  checkInvariants,
  LocalRabbitCluster,
  PROCESSES,
  seededRandom,
  snapshotStock,
  startIsolatedSystem,
  terminateBackends,
} from '../shared/dist/testkit/index.js';

const { values: options } = parseArgs({
  options: {
    orders: { type: 'string', default: '400' },
    rate: { type: 'string', default: '8' },
    seed: { type: 'string', default: '42' },
    faults: { type: 'string', default: 'kill,broker,postgres,plans' },
    interval: { type: 'string', default: '4000' },
    'settle-timeout': { type: 'string', default: '180' },
    'plan-share': { type: 'string', default: '0.2' },
    cluster: { type: 'string', default: '0' },
    'node-down': { type: 'string', default: '6000' },
    profile: { type: 'string', default: 'product' },
    'min-goodput': { type: 'string' },
  },
});
/** The timers each profile runs with (the product's own unless stressed); unset, a setting has the product's default. */
const PROFILES = {
  product: { timers: {}, minGoodput: 0.99 },
  // A 60 s deadline is shorter than the restart storms' queue waits: it is meant to cancel some, as many as the goodput floor allows.
  stress: { timers: { STEP_TIMEOUT_MS: '5000', SAGA_DEADLINE_MS: '60000', COMPENSATION_ATTEMPTS: '10' }, minGoodput: 0.95 },
};
const PROFILE = PROFILES[options.profile];
if (!PROFILE) throw new Error(`--profile must be one of ${Object.keys(PROFILES).join(', ')}`);
const MIN_GOODPUT = Number(options['min-goodput'] ?? PROFILE.minGoodput);
const ORDERS = Number(options.orders);
const RATE = Number(options.rate);
const SEED = Number(options.seed);
const FAULTS = new Set(options.faults.split(','));
const INTERVAL_MS = Number(options.interval);
const PLAN_SHARE = Number(options['plan-share']);
const CLUSTER_NODES = Number(options.cluster);
const NODE_DOWN_MS = Number(options['node-down']);
if (FAULTS.has('node-loss') && CLUSTER_NODES < 3) throw new Error('node-loss needs --cluster 3 (or more): a quorum must survive the loss');
if (FAULTS.has('broker-restart') && CLUSTER_NODES) throw new Error('broker-restart restarts the machine\'s own node; on a cluster, use node-loss');
const SKUS = ['SKU-COFFEE', 'SKU-MUG', 'SKU-TEE'];
const STEPS = ['order.create', 'inventory.reserve', 'payment.charge', 'order.confirm', 'notification.send'];
const PLAN_KINDS = [
  { error: 2 },
  { delay: 300 },
  { 'no-reply': 1 },
  { 'crash-before-commit': true },
  { 'crash-after-commit': true },
  { 'duplicate-reply': true },
];

const random = seededRandom(SEED);
/** Orders placed at once at most: more than RATE × the longest POST, so lanes only queue while the door sheds. */
const LANES = 64;
const describeDelays = (ms) => {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (p) => ((sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0) / 1000).toFixed(1);
  return `p50 ${at(0.5)} s, p99 ${at(0.99)} s, max ${at(1)} s`;
};
const pick = (list) => list[Math.floor(random() * list.length)];

// Everything decided up front from the seed: the orders, and the disruptions (at which moment, what, whom).
const orders = Array.from({ length: ORDERS }, (_, index) => {
  const declined = random() < 0.1;
  const plan = FAULTS.has('plans') && random() < PLAN_SHARE ? { [pick(declined ? STEPS.slice(0, 3) : STEPS)]: pick(PLAN_KINDS) } : undefined;
  // 'fail' before the pivot cancels the order; it is part of the mix too.
  const refused = plan && random() < 0.15;
  if (refused) plan[pick(STEPS.slice(0, 3))] = { fail: 'chaos' };
  return {
    key: `chaos-${SEED}-${index}`,
    // Every other fault delays an order; only a declined card or a refusal before the pivot cancels it.
    expectedToConfirm: !declined && !refused,
    body: {
      customerId: `chaos-${SEED}-${index % 50}`,
      items: [{ sku: SKUS[index % SKUS.length], quantity: 1 + Math.floor(random() * 2) }],
      paymentMethod: declined ? 'tok_chargeDeclined' : 'tok_visa',
      ...(plan ? { faults: plan } : {}),
    },
  };
});
const loadMs = Math.ceil((ORDERS / RATE) * 1000);
const disruptionKinds = ['kill', 'broker', 'postgres', 'broker-restart', 'node-loss'].filter((kind) => FAULTS.has(kind));
// Every kind once first (in a seeded order), then at random.
const firstRound = [...disruptionKinds].sort(() => random() - 0.5);
const schedule = [];
for (let at = INTERVAL_MS; at < loadMs && disruptionKinds.length; at += Math.round(INTERVAL_MS * (0.5 + random()))) {
  const kind = firstRound.shift() ?? pick(disruptionKinds);
  schedule.push({ at, kind, target: kind === 'kill' ? pick(PROCESSES).name : null });
}

const log = (...parts) => console.log(`[chaos ${((Date.now() - started) / 1000).toFixed(1)}s]`, ...parts);
const started = Date.now();
const rootDir = fileURLToPath(new URL('..', import.meta.url));
const cluster = CLUSTER_NODES ? new LocalRabbitCluster({ nodes: CLUSTER_NODES }) : null;
if (cluster) {
  log(`starting a ${CLUSTER_NODES}-node RabbitMQ cluster (${cluster.nodes.map((node) => `${node.name} :${node.amqpPort}`).join(', ')})`);
  await cluster.start();
}
const isolated = await startIsolatedSystem({
  prefix: 'sagaflow_chaos',
  rootDir,
  logDir: `${rootDir}test-logs/{vhost}`,
  env: { FAULT_INJECTION: 'true', ...PROFILE.timers, ...(cluster ? { QUEUE_TYPE: 'quorum' } : {}) },
  restartCrashed: true,
  broker: cluster?.endpoints,
}).catch(async (error) => {
  await cluster?.stop();
  throw error;
});
const { environment, system, client, logDir } = isolated;
const dispose = async () => {
  await isolated.dispose();
  await cluster?.stop();
};
const failovers = [];
let restarting = Promise.resolve();
let nodeLosses = 0;
const WORK_QUEUES = buildTopology('quorum').queues.filter((queue) => queue.role === 'work').map((queue) => queue.name);

/**
 * Each work queue's consumers, as its leader counts them (a passive declare), asked of the first live node
 * that answers; the management API's counts lag by seconds.
 */
async function consumerCounts(nodes) {
  for (const node of nodes) {
    let connection;
    try {
      connection = await amqplib.connect(`amqp://guest:guest@127.0.0.1:${node.amqpPort}/${encodeURIComponent(environment.vhost)}`);
      connection.on('error', () => undefined);
      const counts = {};
      let channel;
      for (const queue of WORK_QUEUES) {
        try {
          if (!channel) (channel = await connection.createChannel()).on('error', () => undefined);
          counts[queue] = (await channel.checkQueue(queue)).consumerCount;
        } catch {
          counts[queue] = 0; // no leader yet: the check closed the channel
          channel = undefined;
        }
      }
      return counts;
    } catch {
      // this node is not answering: the next
    } finally {
      await connection?.close().catch(() => undefined);
    }
  }
  return {};
}

/**
 * SIGKILLs a node (every other time the leader of payment.commands), times the failover (new leaders as the
 * management API shows them, consumers as the leaders count them), and starts the node again NODE_DOWN_MS
 * later, in the background.
 */
async function loseNode() {
  await restarting; // one node down at a time: a quorum of three survives one loss, not two
  const queueInfo = () => environment.admin.queues(environment.vhost);
  const leaderOf = async (queue) => (await queueInfo()).find((info) => info.name === queue)?.leader;
  const paymentLeader = await leaderOf(QUEUES.commandsOf('payment'));
  const victim = nodeLosses++ % 2 === 0 && paymentLeader ? cluster.nodeNamed(paymentLeader) : pick(cluster.nodes);
  const led = (await queueInfo()).filter((info) => info.leader === victim.name && WORK_QUEUES.includes(info.name)).map((info) => info.name);
  const killedAt = Date.now();
  await cluster.killNode(victim.index);
  log(`node-loss: killed ${victim.name}${led.length ? `, leader of ${led.join(', ')}` : ''}`);
  const seconds = (at) => (at === undefined ? 'not within 60 s' : `${((at - killedAt) / 1000).toFixed(1)} s`);
  const failover = { node: victim.name, led, leadersAt: undefined, consumersAt: undefined, backAt: undefined, waitingFor: [] };
  failovers.push(failover);
  const aliveNodes = cluster.nodes.filter((node) => node !== victim);
  const alive = aliveNodes.map((node) => node.name);
  for (const deadline = killedAt + 60_000; Date.now() < deadline && failover.consumersAt === undefined; ) {
    if (failover.leadersAt === undefined) {
      const work = (await queueInfo().catch(() => [])).filter((info) => WORK_QUEUES.includes(info.name));
      if (work.length === WORK_QUEUES.length && work.every((info) => alive.includes(info.leader))) failover.leadersAt = Date.now();
      else failover.waitingFor = WORK_QUEUES.filter((queue) => !alive.includes(work.find((info) => info.name === queue)?.leader));
    } else {
      // Every process connected again (ready: it reaches RabbitMQ) and every queue consumed. A process the chaos
      // has just killed waits for that restart, not for the failover.
      const running = PROCESSES.map((process) => process.name).filter((name) => system.isRunning(name));
      const ready = await Promise.all(running.map((name) => fetch(`${system.url(name)}/health/ready`).then((response) => response.ok, () => false)));
      const counts = await consumerCounts(aliveNodes);
      failover.waitingFor = [
        ...running.filter((_, index) => !ready[index]).map((name) => `${name} to reconnect`),
        ...WORK_QUEUES.filter((queue) => !(counts[queue] > 0) && system.isRunning(ownerOfQueue(queue))),
      ];
      if (!failover.waitingFor.length) failover.consumersAt = Date.now();
    }
    if (failover.consumersAt === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  restarting = (async () => {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, killedAt + NODE_DOWN_MS - Date.now())));
    await cluster.startNode(victim.index);
    failover.backAt = Date.now();
    const late = failover.consumersAt === undefined && failover.waitingFor.length ? ` (then still waiting for ${failover.waitingFor.join(', ')})` : '';
    failover.text = `${victim.name}${led.length ? ` (leader of ${led.length} work queues${led.includes(QUEUES.commandsOf('payment')) ? ', payment.commands among them' : ''})` : ''}: leaders ${seconds(failover.leadersAt)}, consumers ${seconds(failover.consumersAt)}${late}, back ${seconds(failover.backAt)}`;
    log(`node-loss: ${failover.text}`);
  })();
}
/** A cancellation's reason by its code (the part before the first colon). */
const reasonCode = (reason) => (reason ?? 'unknown').split(':')[0];

/**
 * Every 2 s, how long the oldest command has waited at the head of its queue (classic queues carry the
 * `timestamp` of the message there; quorum queues do not say) and how many were ready, until stopped.
 */
function sampleQueues() {
  const samples = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const queues = (await environment.admin.queues(environment.vhost)).filter((queue) => /\.commands$/.test(queue.name));
        const nowSeconds = Date.now() / 1000;
        const heads = queues.filter((queue) => queue.messages_ready && queue.head_message_timestamp).map((queue) => nowSeconds - queue.head_message_timestamp);
        samples.push({ at: Date.now() - started, oldestSeconds: heads.length ? Math.max(...heads) : 0, ready: queues.reduce((sum, queue) => sum + (queue.messages_ready ?? 0), 0) });
      } catch {
        // the management API may be away (a broker restart)
      }
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  })();
  return { stop: async () => ((running = false), await loop, samples) };
}

/** The samples per minute: the longest head-of-queue wait and the most commands ready. */
function describeSamples(samples) {
  const minutes = new Map();
  for (const sample of samples) {
    const minute = Math.floor(sample.at / 60_000);
    const seen = minutes.get(minute) ?? { oldestSeconds: 0, ready: 0 };
    minutes.set(minute, { oldestSeconds: Math.max(seen.oldestSeconds, sample.oldestSeconds), ready: Math.max(seen.ready, sample.ready) });
  }
  return [...minutes].map(([minute, { oldestSeconds, ready }]) => `${minute}m ${oldestSeconds.toFixed(0)} s/${ready}`).join(', ') || 'no samples';
}

/** Lines of every process's log that contain each marker. */
function countLogLines(dir, markers) {
  const counts = Object.fromEntries(Object.keys(markers).map((name) => [name, 0]));
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.log'))) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      for (const [name, marker] of Object.entries(markers)) if (line.includes(marker)) counts[name]++;
    }
  }
  return counts;
}

/** Where each order still pending stopped: its saga's wait, and the last log lines that name it in each process. */
async function describePending(pendingOrders, limit = 3) {
  const lines = [];
  const logs = readdirSync(logDir).filter((name) => name.endsWith('.log')).map((name) => [name, readFileSync(join(logDir, name), 'utf8').split('\n')]);
  for (const order of pendingOrders.slice(0, limit)) {
    const [saga] = await client.get(`/console/sagas?orderId=${order.orderId}`).catch(() => []);
    lines.push(`  ${order.orderId}: saga ${saga?.id ?? '?'} ${saga?.status ?? '?'}, awaiting ${JSON.stringify(saga?.awaiting ?? null)}`);
    const names = [order.orderId, saga?.id].filter(Boolean);
    for (const [file, fileLines] of logs) {
      const hits = fileLines.filter((line) => names.some((name) => line.includes(name)));
      for (const line of hits.slice(-4)) lines.push(`    ${file}: ${line.slice(0, 400)}`);
    }
  }
  return lines;
}

/** Orders with both a charge and a refund: what trusting the broker must make rare (a late charge undone). */
async function countChargedAndRefunded(finalOrders) {
  let count = 0;
  for (const order of finalOrders.filter((candidate) => candidate.status === 'CANCELLED')) {
    const payments = await client.payments(order.orderId);
    if (payments.some((payment) => payment.type === 'charge') && payments.some((payment) => payment.type === 'refund')) count++;
  }
  return count;
}

let exitCode = 1;
try {
  log(`seed ${SEED}: ${ORDERS} orders at ${RATE}/s, ${orders.filter((order) => order.body.faults).length} with fault plans; logs in ${logDir}`);
  log(`schedule: ${schedule.map((step) => `${(step.at / 1000).toFixed(1)}s ${step.kind}${step.target ? ` ${step.target}` : ''}`).join(', ') || 'none'}`);
  const before = await snapshotStock(client, SKUS);

  const injected = {};
  const startedLoadAt = Date.now();
  const disruptions = (async () => {
    for (const step of schedule) {
      const wait = startedLoadAt + step.at - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      injected[step.kind] = (injected[step.kind] ?? 0) + 1;
      log(`disruption: ${step.kind}${step.target ? ` ${step.target}` : ''}`);
      try {
        if (step.kind === 'kill') {
          await system.kill(step.target);
          if (!system.isRunning(step.target)) await system.startProcess(step.target);
        } else if (step.kind === 'broker') await environment.admin.closeConnections(environment.vhost);
        else if (step.kind === 'node-loss') await loseNode();
        else if (step.kind === 'postgres') await terminateBackends(environment.databaseUrl);
        else if (step.kind === 'broker-restart') {
          execFileSync('rabbitmqctl', ['stop_app'], { stdio: 'ignore' });
          execFileSync('rabbitmqctl', ['start_app'], { stdio: 'ignore' });
        }
      } catch (error) {
        log(`disruption ${step.kind} failed: ${error.message}`);
      }
    }
  })();

  // Open loop: order i is due at i / RATE s. A refused or unanswered POST is sent again with the same
  // Idempotency-Key (the orchestrator may be down), after its Retry-After when it sheds load (429) or waits
  // for a dependency (503), so no order is placed twice. Orders go through LANES lanes, each in index order:
  // while the door sheds, a waiting order keeps its place ahead of later ones instead of losing a lottery to
  // them (as a client's own queue would), and its 10 minutes run from its first try.
  const answers = {};
  const acceptedAfterMs = [];
  const sampling = sampleQueues();
  const orderIds = new Array(ORDERS);
  const place = async (order, index) => {
    const due = startedLoadAt + (index / RATE) * 1000;
    if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
    for (const deadline = Date.now() + 600_000; ; ) {
      const answer = await client.placeOrder(order.body, { 'Idempotency-Key': order.key }).catch((error) => ({ status: 'unanswered', error }));
      answers[answer.status] = (answers[answer.status] ?? 0) + 1;
      if (answer.status === 202) {
        acceptedAfterMs.push(Date.now() - due);
        return answer.body.orderId;
      }
      if (Date.now() > deadline) throw new Error(`order ${index} was not accepted within 10 min: POST /orders ${answer.status}`);
      const retryAfter = Number(answer.retryAfter ?? 0);
      await new Promise((resolve) => setTimeout(resolve, retryAfter > 0 ? retryAfter * 1000 : 250));
    }
  };
  await Promise.all(
    Array.from({ length: LANES }, async (_, lane) => {
      for (let index = lane; index < ORDERS; index += LANES) orderIds[index] = await place(orders[index], index);
    }),
  );
  await disruptions;
  await restarting;
  const faultsStoppedAt = Date.now();
  log(`load and disruptions done; waiting for every order to settle`);

  const settleTimeoutMs = Number(options['settle-timeout']) * 1000;
  const final = [];
  for (const orderId of orderIds) {
    const remaining = Math.max(1_000, faultsStoppedAt + settleTimeoutMs - Date.now());
    final.push(await client.awaitFinal(orderId, remaining).catch(async () => (await client.order(orderId))));
  }
  const quiesceMs = Date.now() - faultsStoppedAt;
  const settled = final.filter((order) => order.status !== 'PENDING');
  const queueSamples = await sampling.stop();

  const results = await checkInvariants(client, settled, before);
  results.unshift({
    name: `every order settled within ${options['settle-timeout']} s of the last fault`,
    pass: settled.length === final.length,
    detail: settled.length === final.length ? 'ok' : `${final.length - settled.length} still pending, e.g. ${final.find((order) => order.status === 'PENDING')?.orderId}`,
  });
  if (FAULTS.has('node-loss')) {
    const slow = failovers.filter((failover) => failover.consumersAt === undefined || failover.backAt === undefined);
    results.push({
      name: 'every node loss failed over (new leaders, consumers back within 60 s) and the node rejoined',
      pass: failovers.length > 0 && slow.length === 0,
      detail: failovers.length ? slow.map((failover) => failover.text ?? failover.node).join('; ') : 'no node was lost',
    });
  }
  // Goodput: of the orders the card and fault-plan mix expect to confirm, those that did. Faults delay orders;
  // only the business deadline may cancel one, and even that must stay rare.
  const expected = final.filter((_, index) => orders[index].expectedToConfirm);
  const confirmed = expected.filter((order) => order.status === 'CONFIRMED').length;
  const goodput = expected.length ? confirmed / expected.length : 1;
  const cancelledBy = {};
  for (const order of final) if (order.status === 'CANCELLED') cancelledBy[reasonCode(order.failureReason)] = (cancelledBy[reasonCode(order.failureReason)] ?? 0) + 1;
  const timedOut = expected.filter((order) => order.status === 'CANCELLED' && /^(TIMEOUT|DEADLINE_EXCEEDED)/.test(order.failureReason ?? '')).length;
  results.push({
    name: `goodput: at least ${(MIN_GOODPUT * 100).toFixed(0)}% of the orders expected to confirm did`,
    pass: goodput >= MIN_GOODPUT,
    detail: `${confirmed} of ${expected.length} (${(goodput * 100).toFixed(2)}%)`,
  });
  const maxTimedOut = Math.max(0.01, 1 - MIN_GOODPUT);
  results.push({
    name: `cancellations by TIMEOUT or DEADLINE at most ${(maxTimedOut * 100).toFixed(0)}% of the orders expected to confirm`,
    pass: timedOut <= expected.length * maxTimedOut,
    detail: `${timedOut} of ${expected.length}`,
  });
  const deadLetters = await client.deadLetters();
  const unaccounted = deadLetters.filter((letter) => !letter.orderId);
  results.push({
    name: 'every dead letter accounted for (listed in the console with its saga)',
    pass: unaccounted.length === 0,
    detail: `${deadLetters.length} dead letters${unaccounted.length ? `, ${unaccounted.length} without a saga: ${unaccounted.map((letter) => letter.messageId).join(', ')}` : ''}`,
  });

  const lettersBy = {};
  for (const letter of deadLetters) {
    const key = `${letter.type ?? '?'}: ${letter.reason ?? '?'}`;
    lettersBy[key] = (lettersBy[key] ?? 0) + 1;
  }
  const byStatus = {};
  for (const order of final) byStatus[order.status] = (byStatus[order.status] ?? 0) + 1;
  const plans = {};
  for (const order of orders) for (const spec of Object.values(order.body.faults ?? {})) for (const kind of Object.keys(spec)) plans[kind] = (plans[kind] ?? 0) + 1;
  console.log('\n## Chaos report');
  console.log(`seed ${SEED}, ${ORDERS} orders at ${RATE}/s over ${(loadMs / 1000).toFixed(0)} s`);
  console.log(`orders by final state: ${JSON.stringify(byStatus)}`);
  console.log(`disruptions: ${JSON.stringify(injected)}; process crashes from fault plans: ${JSON.stringify(Object.fromEntries(system.crashes))}`);
  console.log(`fault plans: ${JSON.stringify(plans)}`);
  console.log(`time to quiesce after the last fault: ${(quiesceMs / 1000).toFixed(1)} s`);
  console.log(`profile ${options.profile}: ${JSON.stringify(PROFILE.timers)}; POST /orders answers: ${JSON.stringify(answers)}; accepted after it was due: ${describeDelays(acceptedAfterMs)}`);
  console.log(`goodput: ${confirmed} of ${expected.length} orders expected to confirm did (${(goodput * 100).toFixed(2)}%); cancellations by reason: ${JSON.stringify(cancelledBy)}`);
  const logs = countLogLines(logDir, { duplicates: '"duplicate command: reply sent again"', timers: '"saga timer fired"', expired: '"reason":"expired"' });
  const chargedAndRefunded = await countChargedAndRefunded(final);
  console.log(
    `per order: ${(logs.duplicates / ORDERS).toFixed(3)} duplicate commands answered by an inbox, ${(logs.timers / ORDERS).toFixed(3)} saga timers fired; ` +
      `${logs.expired} commands dead-lettered as expired; ${chargedAndRefunded} orders both charged and refunded`,
  );
  console.log(`dead letters by message type and reason: ${JSON.stringify(lettersBy)}`);
  console.log(`oldest queued command over time (the longest wait at the head of a command queue, per minute): ${describeSamples(queueSamples)}`);
  if (failovers.length) {
    console.log(`node losses (SIGKILL; seconds after it until every work queue had a leader on a live node, every process had reconnected and every work queue its consumers again, the node ran again):`);
    for (const failover of failovers) console.log(`  ${failover.text}`);
  }
  const pending = final.filter((order) => order.status === 'PENDING');
  if (pending.length) {
    console.log(`orders still pending (their saga's wait, and the last log lines naming them):`);
    for (const line of await describePending(pending)) console.log(line);
  }
  for (const result of results) console.log(`${result.pass ? 'PASS' : 'FAIL'}  ${result.name}${result.pass ? '' : `: ${result.detail}`}`);
  exitCode = results.every((result) => result.pass) ? 0 : 1;
  console.log(`${results.filter((result) => result.pass).length} passed, ${results.filter((result) => !result.pass).length} failed`);
} catch (error) {
  console.error(`chaos run failed: ${error.stack ?? error}`);
} finally {
  await dispose();
}
process.exit(exitCode);
