// Nobody gets in where they don't belong: every route × {no token, bad token, client, operator} answers as
// the roles say; JWTs are verified against the issuer's JWKS (a test issuer served here), a client's JWT
// acts only for its own customer, and the console records who did what in the saga's history.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { eventually, freePort, type SagaflowClient } from '../../shared/src/testkit/index.js';
import { startSuiteSystem, type SuiteSystem } from './suite-system.js';

const ISSUER = 'https://issuer.sagaflow.test';
const AUDIENCE = 'sagaflow-api';
type Keys = Awaited<ReturnType<typeof generateKeyPair>>;

let suite: SuiteSystem;
let jwksServer: Server;
let issuerKeys: Keys;
let foreignKeys: Keys;
let api: SagaflowClient;

beforeAll(async () => {
  [issuerKeys, foreignKeys] = await Promise.all([generateKeyPair('RS256'), generateKeyPair('RS256')]);
  const jwk: JWK = { ...(await exportJWK(issuerKeys.publicKey)), kid: 'test-1', alg: 'RS256', use: 'sig' };
  jwksServer = createServer((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
  const port = await freePort();
  await new Promise<void>((resolve) => jwksServer.listen(port, '127.0.0.1', resolve));
  suite = await startSuiteSystem('auth', {
    FAULT_INJECTION: 'true',
    JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`,
    JWT_ISSUER: ISSUER,
    JWT_AUDIENCE: AUDIENCE,
    JWT_CUSTOMER_CLAIM: 'sub',
  });
  api = suite.isolated.client;
}, 120_000);
afterAll(async () => {
  await suite?.dispose();
  jwksServer?.close();
});

/** A token as the test issuer (or another) would sign it. */
function jwt(claims: Record<string, unknown>, { keys = issuerKeys, issuer = ISSUER, audience = AUDIENCE, expires = '5m' } = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-1' }).setIssuer(issuer).setAudience(audience).setIssuedAt().setExpirationTime(expires).sign(keys.privateKey);
}

const order = (customerId = `customer-${randomUUID()}`) => ({ customerId, items: [{ sku: 'SKU-MUG', quantity: 1 }], paymentMethod: 'tok_visa' });
const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

type Caller = 'none' | 'bad' | 'client' | 'operator';
const CALLERS: Caller[] = ['none', 'bad', 'client', 'operator'];

test('every route × {no token, bad token, client, operator} gets the status its role allows', async () => {
  const orderId = await api.submit(order());
  const saga = await api.awaitFinal(orderId);
  const unknownSaga = randomUUID();
  // [route, request, expected status for client and for operator]; no token and a bad one are 401 unless public.
  const routes: [string, string, RequestInit, number, number][] = [
    ['GET /health', '/health', {}, 200, 200],
    ['GET /health/live', '/health/live', {}, 200, 200],
    ['GET /health/ready', '/health/ready', {}, 200, 200],
    ['POST /orders', '/orders', json(order()), 202, 202],
    ['GET /orders/:id', `/orders/${orderId}`, {}, 200, 200],
    ['GET /orders', '/orders', {}, 200, 200],
    ['GET /inventory', '/inventory', {}, 200, 200],
    ['GET /inventory/:sku', '/inventory/SKU-MUG', {}, 200, 200],
    ['GET /payments', `/payments?orderId=${orderId}`, {}, 200, 200],
    ['GET /notifications', `/notifications?orderId=${orderId}`, {}, 200, 200],
    ['GET /console/dead-letters', '/console/dead-letters', {}, 403, 200],
    ['POST /console/dead-letters/replay', '/console/dead-letters/replay', json({ messageIds: [randomUUID()] }), 403, 201],
    ['POST /console/dead-letters/discard', '/console/dead-letters/discard', json({ messageIds: [randomUUID()], reason: 'matrix' }), 403, 201],
    ['GET /console/sagas', '/console/sagas', {}, 403, 200],
    ['POST /console/sagas/:id/retry (finished)', `/console/sagas/${saga.saga.id}/retry`, json({}), 403, 409],
    ['POST /console/sagas/:id/compensate (unknown)', `/console/sagas/${unknownSaga}/compensate`, json({ reason: 'matrix' }), 403, 404],
    ['GET /ui/session', '/ui/session', {}, 403, 200],
    ['GET /ui/events', '/ui/events', {}, 403, 200],
    // The dashboard's sign-in and sign-out (POST and DELETE /ui/session) are public: dashboard.e2e.test.ts.
  ];
  const tokens: Record<Caller, string | undefined> = { none: undefined, bad: 'not-a-key-of-ours-0123456789', client: suite.isolated.apiKeys.client, operator: suite.isolated.apiKeys.operator };
  const got: Record<string, Record<Caller, number>> = {};
  const expected: Record<string, Record<Caller, number>> = {};
  for (const [name, path, init, asClient, asOperator] of routes) {
    const isPublic = name.startsWith('GET /health');
    expected[name] = { none: isPublic ? 200 : 401, bad: isPublic ? 200 : 401, client: asClient, operator: asOperator };
    got[name] = {} as Record<Caller, number>;
    for (const caller of CALLERS) {
      // A POST /orders body is used once per caller: a fresh customer each time.
      const request = name === 'POST /orders' ? json(order()) : init;
      const response = await api.as(tokens[caller]).fetch(path, request);
      got[name][caller] = response.status;
      await response.body?.cancel(); // unread; the event stream's would never end
      if (response.status === 401) expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
  }
  expect(got).toEqual(expected);
}, 60_000);

test('a JWT signed by the issuer’s JWKS works; one from another issuer, another key, expired or without a role does not', async () => {
  const operator = await jwt({ sub: 'ops-alice', roles: ['operator'] });
  expect((await api.as(operator).fetch('/console/sagas')).status).toBe(200);
  const client = await jwt({ sub: 'customer-jwt-1', roles: 'client' });
  expect((await api.as(client).fetch('/console/sagas')).status).toBe(403);

  const refused = {
    'another issuer': await jwt({ sub: 'x', roles: ['operator'] }, { issuer: 'https://evil.example' }),
    'another audience': await jwt({ sub: 'x', roles: ['operator'] }, { audience: 'someone-else' }),
    'a key not in the JWKS': await jwt({ sub: 'x', roles: ['operator'] }, { keys: foreignKeys }),
    expired: await jwt({ sub: 'x', roles: ['operator'] }, { expires: '-1m' }),
  };
  for (const [why, token] of Object.entries(refused)) {
    const response = await api.as(token).fetch('/orders');
    expect({ why, status: response.status }).toEqual({ why, status: 401 });
  }
  expect((await api.as(await jwt({ sub: 'x', roles: ['auditor'] })).fetch('/orders')).status).toBe(403);
});

test('a client’s JWT acts only for its own customer: other customers’ orders are refused or absent', async () => {
  const mine = `customer-${randomUUID()}`;
  const me = api.as(await jwt({ sub: mine, roles: ['client'] }));
  const placed = await me.placeOrder(order(mine));
  expect(placed.status).toBe(202);
  expect((await me.placeOrder(order('someone-else'))).status).toBe(403);

  const theirs = await api.submit(order());
  expect((await me.fetch(`/orders/${placed.body.orderId}`)).status).toBe(200);
  expect((await me.fetch(`/orders/${theirs}`)).status).toBe(404);
  expect((await me.fetch(`/payments?orderId=${theirs}`)).status).toBe(404);
  const listed = (await (await me.fetch('/orders?limit=100')).json()) as { orders: { customerId: string }[] };
  expect(listed.orders.length).toBeGreaterThan(0);
  expect(listed.orders.every((row) => row.customerId === mine)).toBe(true);
  expect((await me.fetch('/orders?customerId=someone-else')).status).toBe(403);
  // An API-key client is a trusted backend: it acts for any customer.
  expect((await api.as(suite.isolated.apiKeys.client).fetch(`/orders/${theirs}`)).status).toBe(200);
});

test('a saga compensated from the console records the operator who did it', async () => {
  const stuck = await api.submit({ ...order(), faults: { 'inventory.reserve': { 'no-reply': 5 } } });
  const sagaId = await eventually(async () => {
    const view = await api.order(stuck);
    return view?.saga.steps.find((step) => step.name === 'reserve-inventory')?.status === 'RUNNING' ? view.saga.id : undefined;
  }, { what: 'the reserve under way' });
  const operator = api.as(await jwt({ sub: 'ops-bob@example.com', roles: ['operator'] }));
  expect((await operator.fetch(`/console/sagas/${sagaId}/compensate`, json({ reason: 'customer called to cancel' }))).status).toBe(201);
  const cancelled = await api.awaitFinal(stuck);
  expect(cancelled.status).toBe('CANCELLED');
  expect(cancelled.saga.history).toContainEqual(
    expect.objectContaining({ kind: 'operator-action', outcome: 'compensate', detail: 'customer called to cancel', actor: 'ops-bob@example.com' }),
  );
});

test('no credential reaches a log: refused and accepted requests log their headers with the token redacted', async () => {
  const { operator, client } = suite.isolated.apiKeys;
  const bad = `leaked-${randomUUID()}`;
  expect((await api.as(bad).fetch('/orders')).status).toBe(401);
  expect((await api.as(client).fetch('/console/sagas')).status).toBe(403);
  const logDir = suite.isolated.logDir;
  // The refusals are logged (at warn, with their headers): wait for both lines, then look for any secret.
  const logs = () => readdirSync(logDir).filter((name) => name.endsWith('.log')).map((name) => readFileSync(join(logDir, name), 'utf8')).join('\n');
  await eventually(async () => ((logs().match(/"statusCode":40[13]/g) ?? []).length >= 2 ? true : undefined), { what: 'the refusals logged' });
  const text = logs();
  expect(text).toContain('[redacted]');
  for (const secret of [operator, client, bad]) expect(text.includes(secret)).toBe(false);
});
