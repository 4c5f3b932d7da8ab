// The served API document: a valid OpenAPI 3.1 document; every route in it answers, and with a status, headers and
// body the document gives for it (errors included); its request examples are accepted; /docs loads without a
// token or a CDN. (orchestrator/src/api-docs/openapi.test.ts checks it lists every route Nest serves.)
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { api, clientKey } from './context.js';

interface Operation {
  requestBody?: { content: Record<string, { examples?: Record<string, { value: unknown }> }> };
  parameters?: { in: string; name: string; required?: boolean; schema: { enum?: string[] } }[];
  responses: Record<string, { headers?: Record<string, { required?: boolean }>; content?: Record<string, { schema?: object }> }>;
}
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> };

const anonymous = api.as(undefined);
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats.default(ajv);
const compiled = new WeakMap<object, ValidateFunction>();
let served: Document;
/** The document with every $ref resolved, to validate answers against. */
let resolved: Document;

const json = { 'content-type': 'application/json' };
const operation = (method: string, path: string): Operation => {
  const found = resolved.paths[path]?.[method.toLowerCase()];
  if (!found) throw new Error(`${method} ${path} is not in the document`);
  return found;
};

/** Checks an answer against the document: a status it lists for the route, its required headers, its body's type and schema. */
async function expectDocumented(method: string, path: string, response: Response): Promise<unknown> {
  const answer = `${method} ${path} answered ${response.status}`;
  const documented = operation(method, path).responses[response.status];
  if (!documented) throw new Error(`${answer}, which the document does not list (${await response.text()})`);
  for (const [name, header] of Object.entries(documented.headers ?? {})) if (header.required && !response.headers.has(name)) throw new Error(`${answer} without its header ${name}`);
  const type = response.headers.get('content-type') ?? '';
  const types = Object.keys(documented.content ?? {});
  if (types.length && !types.some((documentedType) => type.startsWith(documentedType))) throw new Error(`${answer} with ${type}, not ${types.join(' or ')}`);
  if (type.startsWith('text/event-stream')) return response.body?.cancel();
  if (!type.startsWith('application/json')) return response.text();
  const body: unknown = await response.json();
  const schema = documented.content?.['application/json']?.schema;
  if (!schema) throw new Error(`${answer} with a JSON body the document does not describe`);
  const validate = compiled.get(schema) ?? ajv.compile(schema);
  compiled.set(schema, validate);
  if (!validate(body)) throw new Error(`${answer}, not as the document says: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`);
  return body;
}

const unknownId = '01a1fffc-0000-7000-8000-000000000000';
let orderId: string;
let sagaId: string;

beforeAll(async () => {
  const response = await anonymous.fetch('/openapi.json');
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  served = (await response.json()) as Document;
  const validator = new Validator();
  const result = await validator.validate(structuredClone(served));
  expect(result.errors).toBeUndefined();
  expect(result.valid).toBe(true);
  expect(validator.version).toBe('3.1');
  resolved = validator.resolveRefs() as Document;

  const placed = await api.placeOrder({ customerId: 'api-docs', items: [{ sku: 'SKU-TEE', quantity: 1 }], paymentMethod: 'tok_visa' });
  orderId = placed.body.orderId;
  sagaId = (await api.awaitFinal(orderId)).saga.id;
});

describe('the OpenAPI document at /openapi.json', () => {
  test('is public and valid OpenAPI 3.1, with a bearer scheme and the role each route needs', () => {
    expect(served.openapi).toBe('3.1.0');
    const { components, paths } = served as unknown as { components: { securitySchemes: Record<string, { type: string; scheme?: string }> }; paths: Record<string, Record<string, { security: Record<string, string[]>[] }>> };
    expect(components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(paths['/console/sagas'].get.security).toContainEqual({ bearer: ['operator'] });
    expect(paths['/orders'].post.security).toContainEqual({ bearer: ['client'] });
    for (const path of ['/health', '/health/live', '/health/ready', '/openapi.json', '/docs']) expect(paths[path].get.security).toEqual([]);
  });

  test('every documented route is served, and answers as the document says', async () => {
    // Requests that change nothing but place one order: unknown dead letters, a finished saga (409).
    const bodies: Record<string, unknown> = {
      'POST /orders': { customerId: 'api-docs', items: [{ sku: 'SKU-MUG', quantity: 1 }], paymentMethod: 'tok_visa' },
      'POST /console/dead-letters/replay': { messageIds: [unknownId] },
      'POST /console/dead-letters/discard': { messageIds: [unknownId], reason: 'api docs test' },
      'POST /console/sagas/{id}/retry': { reason: 'api docs test' },
      'POST /console/sagas/{id}/compensate': { reason: 'api docs test' },
    };
    const tried: string[] = [];
    for (const [template, item] of Object.entries(resolved.paths)) {
      for (const [method, { parameters = [], requestBody }] of Object.entries(item)) {
        const key = `${method.toUpperCase()} ${template}`;
        const values = (name: string, schema: { enum?: string[] }): string[] =>
          schema.enum ?? [name === 'sku' ? 'SKU-COFFEE' : template.startsWith('/console/sagas') ? sagaId : orderId];
        const query = new URLSearchParams(parameters.filter((p) => p.in === 'query' && p.required).map((p): [string, string] => [p.name, values(p.name, p.schema)[0]]));
        // One request per value of an enumerated path parameter (the docs' assets), else one.
        const pathParameter = parameters.find((p) => p.in === 'path');
        for (const value of pathParameter ? values(pathParameter.name, pathParameter.schema) : ['']) {
          const path = template.replace(/\{\w+\}/, value) + (query.size ? `?${query}` : '');
          const response = await api.fetch(path, {
            method: method.toUpperCase(),
            ...(requestBody && { headers: json, body: JSON.stringify(bodies[key] ?? {}) }),
          });
          const body = await expectDocumented(method, template, response);
          // Nest's answer to a path it has no route for: `Cannot GET /path`.
          expect([path, (body as { message?: string } | undefined)?.message ?? '']).not.toEqual([path, expect.stringMatching(/^Cannot /)]);
          tried.push(`${key} ${response.status}`);
        }
      }
    }
    expect(tried).toEqual(expect.arrayContaining(['POST /orders 202', 'GET /orders/{id} 200', 'POST /console/sagas/{id}/compensate 409', 'GET /docs/{asset} 200']));
  });

  test('the error answers are the documented ones: 400, 401, 403, 404, 409, 413, 415, 422', async () => {
    const post = (body: string, headers: Record<string, string> = {}) => api.fetch('/orders', { method: 'POST', headers: { ...json, ...headers }, body });
    const order = JSON.stringify({ customerId: 'api-docs', items: [{ sku: 'SKU-MUG', quantity: 1 }], paymentMethod: 'tok_visa' });
    const answers: [number, string, string, Response][] = [
      [400, 'POST', '/orders', await post(JSON.stringify({ customerId: '', items: [] }))],
      [400, 'POST', '/orders', await post('{not json')],
      [400, 'GET', '/orders/{id}', await api.fetch('/orders/not-an-id')],
      [401, 'GET', '/orders', await anonymous.fetch('/orders')],
      [401, 'GET', '/console/sagas', await api.as('not-a-key-of-ours').fetch('/console/sagas')],
      [403, 'GET', '/console/sagas', await api.as(clientKey).fetch('/console/sagas')],
      [404, 'GET', '/orders/{id}', await api.fetch(`/orders/${unknownId}`)],
      [404, 'POST', '/console/sagas/{id}/retry', await api.fetch(`/console/sagas/${unknownId}/retry`, { method: 'POST', headers: json, body: '{}' })],
      [409, 'POST', '/console/sagas/{id}/compensate', await api.fetch(`/console/sagas/${sagaId}/compensate`, { method: 'POST', headers: json, body: JSON.stringify({ reason: 'too late' }) })],
      [413, 'POST', '/orders', await post(JSON.stringify({ customerId: 'c'.repeat(200_000) }))],
      [415, 'POST', '/orders', await post(order, { 'content-type': 'application/json; charset=latin1' })],
    ];
    const key = `api-docs-${Date.now()}`;
    expect((await post(order, { 'idempotency-key': key })).status).toBe(202);
    answers.push([422, 'POST', '/orders', await post(order.replace('SKU-MUG', 'SKU-TEE'), { 'idempotency-key': key })]);

    const bodies: { statusCode: number; errors?: { field: string }[] }[] = [];
    for (const [status, method, path, response] of answers) {
      expect([method, path, response.status]).toEqual([method, path, status]);
      bodies.push((await expectDocumented(method, path, response)) as (typeof bodies)[number]);
      expect(bodies.at(-1)!.statusCode).toBe(status);
    }
    // Validation names each bad field; a body that is not JSON gets the parser's message alone.
    expect(bodies[0].errors?.map((error) => error.field)).toEqual(expect.arrayContaining(['customerId', 'items', 'paymentMethod']));
    expect(bodies[1].errors).toBeUndefined();
    expect(answers[3][3].headers.get('www-authenticate')).toMatch(/^Bearer /);
  });

  test("POST /orders's request examples are accepted and end as their summaries say", async () => {
    const examples = operation('POST', '/orders').requestBody!.content['application/json'].examples!;
    expect(Object.keys(examples).length).toBeGreaterThan(0);
    for (const [name, { value }] of Object.entries(examples)) {
      const response = await api.fetch('/orders', { method: 'POST', headers: json, body: JSON.stringify(value) });
      expect([name, response.status]).toEqual([name, 202]);
      const { orderId: placed } = (await expectDocumented('POST', '/orders', response)) as { orderId: string };
      const final = await api.awaitFinal(placed);
      expect([name, final.status]).toEqual([name, name === 'declined' ? 'CANCELLED' : 'CONFIRMED']);
      const order = await expectDocumented('GET', '/orders/{id}', await api.fetch(`/orders/${placed}`));
      expect(order).toMatchObject({ orderId: placed, saga: { history: expect.any(Array) } });
    }
  });
});

describe('/docs', () => {
  test('renders without a token: an HTML page whose scripts and stylesheets all load from this server', async () => {
    const response = await anonymous.fetch('/docs');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await response.text();
    const assets = [...html.matchAll(/<(?:script[^>]*\ssrc|link[^>]*\shref)="([^"]+)"/g)].map((match) => match[1]).filter((url) => !url.startsWith('data:'));
    expect(assets).toEqual(expect.arrayContaining([expect.stringMatching(/\.js$/), expect.stringMatching(/\.css$/)]));
    for (const url of assets) {
      // Served here, so the page works offline: no CDN.
      expect(url).toMatch(/^\/docs\//);
      const asset = await anonymous.fetch(url);
      expect([url, asset.status]).toEqual([url, 200]);
      expect(asset.headers.get('content-type')).toMatch(url.endsWith('.css') ? /^text\/css/ : /^(text|application)\/javascript/);
      const text = await asset.text();
      expect(text.length).toBeGreaterThan(0);
      if (url.endsWith('init.js')) expect(text).toContain("url: '/openapi.json'");
    }
    expect((await anonymous.fetch('/docs/nope.js')).status).toBe(404);
  });
});
