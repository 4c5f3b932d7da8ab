// Static checks of docker-compose.yml and the Dockerfile against the repo (no Docker needed): every app
// has a built entry point, waits for healthy dependencies, and logs in to RabbitMQ as a user that exists;
// one image serves the five, stops get the processes' full grace, and the lock installs with `npm ci`.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { NODE_ENV_DEFAULTS, NODE_FLAGS } from '../shared/src/launcher/system.js';
import { SHUTDOWN_GRACE_MS } from '../shared/src/runtime/bootstrap.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, 'utf8');

type Service = {
  image?: string;
  build?: unknown;
  stop_grace_period?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
};
// `merge: true` resolves the `<<: *app` merge keys the app services are written with.
const compose: { services: Record<string, Service> } = parse(read('docker-compose.yml'), { merge: true });
const { services } = compose;
const dockerfile = read('Dockerfile');
const definitions = JSON.parse(read('rabbitmq/definitions.json'));

const apps = {
  orchestrator: { workspace: 'orchestrator', port: 3000 },
  order: { workspace: 'services/order', port: 3101 },
  inventory: { workspace: 'services/inventory', port: 3102 },
  payment: { workspace: 'services/payment', port: 3103 },
  notification: { workspace: 'services/notification', port: 3104 },
};
const appCases = Object.entries(apps).map(([name, app]) => [name, app] as const);

describe('docker-compose.yml', () => {
  test('has rabbitmq, postgres and the five apps, each with a healthcheck', () => {
    expect(Object.keys(services).sort()).toEqual(['rabbitmq', 'postgres', ...Object.keys(apps)].sort());
    for (const [name, service] of Object.entries(services)) {
      expect([name, service.healthcheck?.test?.[0]]).toEqual([name, expect.stringMatching(/^CMD(-SHELL)?$/)]);
    }
  });

  test('one image for the five apps, built once (by the orchestrator)', () => {
    const appServices = Object.keys(apps).map((name) => services[name]);
    expect(new Set(appServices.map((service) => service.image)).size).toBe(1);
    expect(services.orchestrator.image).toMatch(/^[a-z0-9][\w.-]*(:[\w.-]+)?$/);
    expect(appServices.filter((service) => service.build !== undefined)).toEqual([services.orchestrator]);
    expect(services.orchestrator.build).toBe('.');
  });

  test('rabbitmq keeps the management and Prometheus plugins on', () => {
    const plugins = read('rabbitmq/enabled_plugins').match(/^\[(.*)\]\.\s*$/s)?.[1].split(',').map((plugin) => plugin.trim());
    expect(plugins).toEqual(expect.arrayContaining(['rabbitmq_management', 'rabbitmq_prometheus']));
  });

  test('rabbitmq mounts its config, plugins and definitions from files that exist', () => {
    const mounts = Object.fromEntries(
      (services.rabbitmq.volumes ?? []).map((volume) => {
        const [source, target] = volume.split(':');
        return [target, source];
      }),
    );
    for (const file of ['rabbitmq.conf', 'definitions.json', 'enabled_plugins']) {
      const source = mounts[`/etc/rabbitmq/${file}`];
      expect(source).toBeDefined();
      expect(existsSync(`${root}${source}`)).toBe(true);
    }
    // The broker loads the definitions from where they are mounted.
    expect(read('rabbitmq/rabbitmq.conf')).toMatch(/^load_definitions\s*=\s*\/etc\/rabbitmq\/definitions\.json$/m);
  });

  describe.each(appCases)('%s', (name, { workspace, port }) => {
    const service = services[name];

    test('runs the one image and waits for a healthy rabbitmq and postgres', () => {
      expect(service.image).toBe(services.orchestrator.image);
      expect(service.depends_on).toEqual({
        rabbitmq: { condition: 'service_healthy' },
        postgres: { condition: 'service_healthy' },
      });
    });

    test(`runs ${workspace}/dist/main.js, built from src/main.ts and copied into the image`, () => {
      expect(service.command?.[0]).toBe('node');
      expect(service.command?.at(-1)).toBe(`${workspace}/dist/main.js`);
      expect(existsSync(`${root}${workspace}/src/main.ts`)).toBe(true);
      expect(dockerfile).toContain(`COPY --from=build /app/${workspace}/dist ${workspace}/dist`);
    });

    test('runs with the launcher\'s Node flags (those NODE_OPTIONS refuses on its command line) and environment', () => {
      const flags = [...(service.environment?.NODE_OPTIONS ?? '').split(' '), ...(service.command ?? []).slice(1, -1)];
      expect(flags.sort()).toEqual([...NODE_FLAGS].sort());
      expect(service.environment).toMatchObject(NODE_ENV_DEFAULTS);
    });

    test(`listens on ${port}, publishes it and checks liveness on it (an outage must not get it replaced)`, () => {
      expect(service.environment?.PORT).toBe(String(port));
      expect(service.ports).toContain(`${port}:${port}`);
      expect(service.healthcheck?.test.join(' ')).toMatch(/process\.env\.PORT \+ '\/health\/live'/);
    });

    test(`is given longer to stop than its own shutdown grace (${SHUTDOWN_GRACE_MS} ms) before Docker kills it`, () => {
      expect(durationMs(service.stop_grace_period ?? '10s')).toBeGreaterThan(SHUTDOWN_GRACE_MS);
    });

    test('logs in to RabbitMQ as a user in rabbitmq/definitions.json', () => {
      const amqp = new URL(service.environment?.AMQP_URL ?? '');
      expect([amqp.hostname, amqp.port, decodeURIComponent(amqp.pathname.slice(1))]).toEqual(['rabbitmq', '5672', '/']);
      const user = definitions.users.find((candidate: { name: string }) => candidate.name === decodeURIComponent(amqp.username));
      expect(user).toBeDefined();
      // rabbit_password_hashing_sha256: base64(salt ++ sha256(salt ++ password)), salt being 4 bytes.
      const hash = Buffer.from(user.password_hash, 'base64');
      const salt = hash.subarray(0, 4);
      const digest = createHash('sha256').update(Buffer.concat([salt, Buffer.from(decodeURIComponent(amqp.password))])).digest();
      expect(digest.equals(hash.subarray(4))).toBe(true);
    });

    test('connects to the compose postgres with its password', () => {
      const database = new URL(service.environment?.DATABASE_URL ?? '');
      const { POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB } = services.postgres.environment ?? {};
      expect([database.hostname, database.username, database.password, database.pathname]).toEqual([
        'postgres',
        POSTGRES_USER,
        POSTGRES_PASSWORD,
        `/${POSTGRES_DB}`,
      ]);
    });
  });
});

describe('Dockerfile', () => {
  test('is multi-stage and runs as a non-root user', () => {
    expect(dockerfile.match(/^FROM\s/gm)?.length).toBeGreaterThanOrEqual(2);
    const users = [...dockerfile.matchAll(/^USER\s+(\S+)/gm)].map((match) => match[1]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users.at(-1)?.split(':')[0]);
  });
});

describe('installs', () => {
  test('the Dockerfile and CI install exactly the lock (npm ci)', () => {
    expect(dockerfile).not.toMatch(/npm (install|i)\b/);
    expect(dockerfile.match(/^RUN npm ci\b/gm)).toHaveLength(2);
    expect(read('.ci/run')).toMatch(/^npm ci\b/m);
  });

  // npm ci refuses a lock in which a package's optional dependency has no entry of its own: a lock written
  // where a registry lacked other platforms' native builds (@swc/core-darwin-arm64, …) fails there.
  test('package-lock.json has an entry for every optional dependency, whatever the platform', () => {
    const { packages } = JSON.parse(read('package-lock.json')) as {
      packages: Record<string, { optionalDependencies?: Record<string, string> }>;
    };
    const missing = Object.entries(packages).flatMap(([path, entry]) =>
      Object.keys(entry.optionalDependencies ?? {})
        .filter((name) => !resolves(packages, path, name))
        .map((name) => `${path || '(root)'} → ${name}`),
    );
    expect(missing).toEqual([]);
  });
});

/** Whether `name`, required from the package at `from`, has an entry: in its own node_modules or an ancestor's. */
function resolves(packages: Record<string, unknown>, from: string, name: string): boolean {
  for (let base = from; ; base = base.slice(0, Math.max(base.lastIndexOf('/node_modules/'), 0))) {
    if (packages[`${base ? `${base}/` : ''}node_modules/${name}`]) return true;
    if (!base) return false;
  }
}

/** A compose duration such as `30s`, `1m30s` or `500ms`, in milliseconds. */
function durationMs(duration: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, us: 0.001 };
  const parts = [...duration.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us)/g)];
  expect(parts.map((part) => part[0]).join('')).toBe(duration);
  return parts.reduce((sum, [, value, unit]) => sum + Number(value) * units[unit], 0);
}
