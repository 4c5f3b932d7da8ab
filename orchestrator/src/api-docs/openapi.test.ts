// The API document against the routes Nest really registers: every route documented (a new one fails here until
// it is), nothing documented that is not served, and each with the access the guard gives it.
import { type DynamicModule, RequestMethod, type Type } from '@nestjs/common';
import { METHOD_METADATA, MODULE_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { Validator } from '@seriousme/openapi-schema-validator';
import { PUBLIC_ROUTE } from '../../../shared/src/runtime/public.js';
import { AppModule } from '../app.module.js';
import { REQUIRED_ROLE } from '../auth/principal.js';
import { openApiDocument } from './openapi.js';

interface Route {
  /** `GET /orders/{id}`, as OpenAPI writes it. */
  key: string;
  /** What the AuthGuard asks of a caller. */
  access: string;
}

/** Every controller of a module and of the modules it imports, dynamic ones included. */
function controllersOf(root: Type | DynamicModule): Type[] {
  const seen = new Set<unknown>();
  const controllers: Type[] = [];
  const visit = (entry: Type | DynamicModule) => {
    const module = 'module' in entry ? entry.module : entry;
    const dynamic = 'module' in entry ? entry : undefined;
    if (seen.has(entry)) return;
    seen.add(entry);
    controllers.push(...(Reflect.getMetadata(MODULE_METADATA.CONTROLLERS, module) ?? []), ...(dynamic?.controllers ?? []));
    for (const imported of [...(Reflect.getMetadata(MODULE_METADATA.IMPORTS, module) ?? []), ...(dynamic?.imports ?? [])]) visit(imported);
  };
  visit(root);
  return [...new Set(controllers)];
}

const join = (...parts: string[]) => `/${parts.join('/')}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1').replace(/:(\w+)/g, '{$1}');
const paths = (value: string | string[] | undefined) => (Array.isArray(value) ? value : [value ?? '/']);

function nestRoutes(): Route[] {
  return controllersOf(AppModule).flatMap((controller) =>
    Object.getOwnPropertyNames(controller.prototype).flatMap((name) => {
      const handler = controller.prototype[name];
      const method: RequestMethod | undefined = Reflect.getMetadata(METHOD_METADATA, handler);
      if (name === 'constructor' || method === undefined) return [];
      const read = (key: string) => Reflect.getMetadata(key, handler) ?? Reflect.getMetadata(key, controller);
      const access = read(PUBLIC_ROUTE) ? 'public' : (read(REQUIRED_ROLE) ?? 'client');
      return paths(Reflect.getMetadata(PATH_METADATA, controller)).flatMap((prefix) =>
        paths(Reflect.getMetadata(PATH_METADATA, handler)).map((path) => ({ key: `${RequestMethod[method]} ${join(prefix, path)}`, access })),
      );
    }),
  );
}

type Operation = { security?: Record<string, string[]>[]; 'x-static-files'?: boolean };
function documentedRoutes(): Route[] {
  const document = openApiDocument();
  return Object.entries(document.paths ?? {}).flatMap(([path, item]) =>
    Object.entries(item as Record<string, Operation>).flatMap(([method, operation]) => {
      // Static files (the dashboard) are served before Nest's router: the e2e test checks that they answer.
      if (operation['x-static-files']) return [];
      const roles = new Set((operation.security ?? []).flatMap((requirement) => Object.values(requirement).flat()));
      return [{ key: `${method.toUpperCase()} ${path}`, access: roles.size === 0 ? 'public' : [...roles].join(',') }];
    }),
  );
}

describe('the OpenAPI document', () => {
  test('is a valid OpenAPI 3.1 document whose references all resolve', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(openApiDocument()) as unknown as Record<string, unknown>);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(() => validator.resolveRefs()).not.toThrow();
  });

  test('documents every route Nest serves and no other, each with the access the guard gives it', () => {
    const served = nestRoutes().sort((a, b) => a.key.localeCompare(b.key));
    const documented = documentedRoutes().sort((a, b) => a.key.localeCompare(b.key));
    expect(served.length).toBeGreaterThan(15);
    // A route missing here needs its entry in api-docs/openapi.ts.
    expect(documented.map((route) => route.key)).toEqual(served.map((route) => route.key));
    expect(documented).toEqual(served);
  });
});
