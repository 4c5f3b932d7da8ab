// `npm run chaos`: a load of orders while, on a seeded schedule, processes are SIGKILLed and restarted,
// broker connections closed and PostgreSQL backends terminated; a share of the orders carry fault plans.
// Then it waits for quiescence and checks the invariants through the HTTP API only. Exits 1 on a violation.
//
//   npm run chaos -- --orders 400 --rate 8 --seed 42 --faults kill,broker,postgres,plans
//   options: --orders N (400)  --rate orders/s (8)  --seed N (42)  --faults list (kill,broker,postgres,plans;
//            add broker-restart to restart the RabbitMQ node too — it stops every vhost on the machine)
//            --interval ms between disruptions (4000)  --settle-timeout s (180)
//            --plan-share: the share of orders that carry a fault plan (0.2); a sixth of those crash a service
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  BrokerAdmin,
  checkInvariants,
  eventually,
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
  },
});
const ORDERS = Number(options.orders);
const RATE = Number(options.rate);
const SEED = Number(options.seed);
const FAULTS = new Set(options.faults.split(','));
const INTERVAL_MS = Number(options.interval);
const PLAN_SHARE = Number(options['plan-share']);
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
const pick = (list) => list[Math.floor(random() * list.length)];

// Everything decided up front from the seed: the orders, and the disruptions (at which moment, what, whom).
const orders = Array.from({ length: ORDERS }, (_, index) => {
  const declined = random() < 0.1;
  const plan = FAULTS.has('plans') && random() < PLAN_SHARE ? { [pick(declined ? STEPS.slice(0, 3) : STEPS)]: pick(PLAN_KINDS) } : undefined;
  // 'fail' before the pivot cancels the order; it is part of the mix too.
  if (plan && random() < 0.15) plan[pick(STEPS.slice(0, 3))] = { fail: 'chaos' };
  return {
    key: `chaos-${SEED}-${index}`,
    body: {
      customerId: `chaos-${SEED}-${index % 50}`,
      items: [{ sku: SKUS[index % SKUS.length], quantity: 1 + Math.floor(random() * 2) }],
      paymentMethod: declined ? 'tok_chargeDeclined' : 'tok_visa',
      ...(plan ? { faults: plan } : {}),
    },
  };
});
const loadMs = Math.ceil((ORDERS / RATE) * 1000);
const disruptionKinds = ['kill', 'broker', 'postgres', 'broker-restart'].filter((kind) => FAULTS.has(kind));
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
const { environment, system, client, logDir, dispose } = await startIsolatedSystem({
  prefix: 'sagaflow_chaos',
  rootDir,
  logDir: `${rootDir}test-logs/{vhost}`,
  env: { FAULT_INJECTION: 'true', STEP_TIMEOUT_MS: '5000', STEP_RESENDS: '2', COMPENSATION_ATTEMPTS: '10' },
  restartCrashed: true,
});
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
        } else if (step.kind === 'broker') await new BrokerAdmin().closeConnections(environment.vhost);
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

  // Open loop: order i is sent at i / RATE s. A refused or unanswered POST is sent again with the same
  // Idempotency-Key (the orchestrator may be down), so no order is placed twice.
  const orderIds = await Promise.all(
    orders.map(async (order, index) => {
      const wait = startedLoadAt + (index / RATE) * 1000 - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      return eventually(
        async () => {
          const { status, body } = await client.placeOrder(order.body, { 'Idempotency-Key': order.key });
          if (status !== 202) throw new Error(`POST /orders ${status}: ${JSON.stringify(body)}`);
          return body.orderId;
        },
        { timeoutMs: 60_000, intervalMs: 250, what: `order ${index} to be accepted` },
      );
    }),
  );
  await disruptions;
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

  const results = await checkInvariants(client, settled, before);
  results.unshift({
    name: `every order settled within ${options['settle-timeout']} s of the last fault`,
    pass: settled.length === final.length,
    detail: settled.length === final.length ? 'ok' : `${final.length - settled.length} still pending, e.g. ${final.find((order) => order.status === 'PENDING')?.orderId}`,
  });
  const deadLetters = await client.deadLetters();
  const unaccounted = deadLetters.filter((letter) => !letter.orderId);
  results.push({
    name: 'every dead letter accounted for (listed in the console with its saga)',
    pass: unaccounted.length === 0,
    detail: `${deadLetters.length} dead letters${unaccounted.length ? `, ${unaccounted.length} without a saga: ${unaccounted.map((letter) => letter.messageId).join(', ')}` : ''}`,
  });

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
  for (const result of results) console.log(`${result.pass ? 'PASS' : 'FAIL'}  ${result.name}${result.pass ? '' : `: ${result.detail}`}`);
  exitCode = results.every((result) => result.pass) ? 0 : 1;
  console.log(`${results.filter((result) => result.pass).length} passed, ${results.filter((result) => !result.pass).length} failed`);
} catch (error) {
  console.error(`chaos run failed: ${error.stack ?? error}`);
} finally {
  await dispose();
}
process.exit(exitCode);
