// Static checks of docker-compose.yml and the Dockerfile against the repo (no Docker needed): every app
// has a built entry point, waits for healthy dependencies, and logs in as its own broker user and database
// role, whose passwords come from the env file (.env, after .env.example) and are set at start;
// one image serves the five, stops get the processes' full grace, and the lock installs with `npm ci`.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { parse } from 'yaml';
import { processRoles } from '../shared/src/launcher/database.js';
import { definedMetricNames } from '../shared/src/observability/metrics.js';
import { PROCESSES } from '../shared/src/launcher/processes.js';
import { NODE_ENV_DEFAULTS, NODE_FLAGS } from '../shared/src/launcher/system.js';
import { SHUTDOWN_GRACE_MS } from '../shared/src/runtime/bootstrap.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, 'utf8');

type Service = {
  image?: string;
  build?: unknown;
  stop_grace_period?: string;
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string; required?: boolean }>;
  profiles?: string[];
};
// `merge: true` resolves the `<<: *app` merge keys the app services are written with.
const compose: { services: Record<string, Service> } = parse(read('docker-compose.yml'), { merge: true });
const { services } = compose;
const dockerfile = read('Dockerfile');
const definitions = JSON.parse(read('rabbitmq/definitions.json'));
/** `NAME=value` lines of the committed example env file, which compose would read as .env. */
const envExample: Record<string, string> = Object.fromEntries(
  read('.env.example')
    .split('\n')
    .filter((line) => /^\w+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
);
/** A compose value with `${VAR:?…}` replaced as compose would, from .env.example: every variable must be there. */
const interpolate = (value: string) =>
  value.replace(/\$\{(\w+)[^}]*\}/g, (_, variable: string) => {
    expect([variable, envExample[variable]]).toEqual([variable, expect.any(String)]);
    return envExample[variable];
  });
/** The variable a password comes from: required (`${VAR:?…}`), never written into the file. */
const passwordVariable = (value: string | undefined) => value?.match(/:\$\{(\w+):\?[^}]*\}@/)?.[1];

const apps = {
  orchestrator: { workspace: 'orchestrator', port: 3000 },
  order: { workspace: 'services/order', port: 3101 },
  inventory: { workspace: 'services/inventory', port: 3102 },
  payment: { workspace: 'services/payment', port: 3103 },
  notification: { workspace: 'services/notification', port: 3104 },
};
/** The nodes the cluster profile adds to rabbitmq. */
const CLUSTER_NODES = ['rabbitmq-2', 'rabbitmq-3'];
const appCases = Object.entries(apps).map(([name, app]) => [name, app] as const);

describe('docker-compose.yml', () => {
  test('has rabbitmq (two more nodes in the cluster profile), postgres and the five apps, each with a healthcheck', () => {
    expect(Object.keys(services).sort()).toEqual(['rabbitmq', ...CLUSTER_NODES, 'postgres', 'prometheus', 'grafana', ...Object.keys(apps)].sort());
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

  test('the orchestrator takes its API keys or JWT settings from .env, and .env.example names them', () => {
    expect(Object.keys(services.orchestrator.environment ?? {})).toEqual(expect.arrayContaining(['API_KEYS', 'JWT_JWKS_URL', 'JWT_ISSUER', 'JWT_AUDIENCE']));
    expect(read('.env.example')).toMatch(/^API_KEYS=operator:\S{16,},client:\S{16,}$/m);
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

  describe('the cluster profile', () => {
    test.each(CLUSTER_NODES)('%s is a node like rabbitmq, only in the profile, with a host name of its own', (name) => {
      const node = services[name];
      expect(node.profiles).toEqual(['cluster']);
      expect([node.image, node.entrypoint, node.environment, node.healthcheck]).toEqual([
        services.rabbitmq.image,
        services.rabbitmq.entrypoint,
        services.rabbitmq.environment,
        services.rabbitmq.healthcheck,
      ]);
      expect((node as { hostname?: string }).hostname).toBe(name);
      for (const volume of node.volumes ?? []) expect(existsSync(`${root}${volume.split(':')[0]}`)).toBe(true);
    });

    test('the other nodes join rabbit@rabbitmq by classic peer discovery, and import no definitions of their own', () => {
      const mounted = services['rabbitmq-2'].volumes?.find((volume) => volume.includes(':/etc/rabbitmq/rabbitmq.conf'))?.split(':')[0];
      const conf = read(mounted!.replace(/^\.\//, ''));
      expect(conf).toMatch(/^cluster_formation\.peer_discovery_backend\s*=\s*classic_config$/m);
      expect(conf).toMatch(/^cluster_formation\.classic_config\.nodes\.1\s*=\s*rabbit@rabbitmq$/m);
      expect(conf).not.toMatch(/load_definitions/);
      expect((services.rabbitmq as { hostname?: string }).hostname).toBe('rabbitmq');
    });

    test('the nodes share the Erlang cookie from .env, which start.sh writes where the broker reads it', () => {
      expect(services.rabbitmq.environment?.ERLANG_COOKIE).toBe('${ERLANG_COOKIE:?copy .env.example to .env}');
      expect(envExample.ERLANG_COOKIE?.length).toBeGreaterThanOrEqual(20);
      expect(read('rabbitmq/start.sh')).toMatch(/\$ERLANG_COOKIE" > "\$cookie"/);
      expect(read('rabbitmq/start.sh')).toContain('cookie=/var/lib/rabbitmq/.erlang.cookie');
    });
  });

  // The definitions and provision.sql carry no passwords: each container sets them from the env file at start.
  test.each([
    ['rabbitmq', 'rabbitmq/start.sh', 'sagaflow-users-ready'],
    ['postgres', 'postgres/start.sh', 'sagaflow-roles-ready'],
  ])('%s starts through %s, and is healthy only once it has set the passwords', (name, script, marker) => {
    const service = services[name];
    expect(service.entrypoint).toEqual(['sh', '/etc/sagaflow/start.sh']);
    expect(service.volumes).toContain(`./${script}:/etc/sagaflow/start.sh:ro`);
    expect(read(script)).toContain(`touch "$ready"`);
    expect(read(script)).toContain(`ready=/tmp/${marker}`);
    expect(service.healthcheck?.test).toEqual(['CMD-SHELL', expect.stringMatching(new RegExp(`^test -f /tmp/${marker} && `))]);
  });

  test('no password is written in the file: each comes from .env (see .env.example), required', () => {
    const text = read('docker-compose.yml');
    for (const [, variable] of text.matchAll(/\$\{(\w+)/g)) expect(envExample).toHaveProperty(variable);
    expect(services.postgres.environment?.POSTGRES_PASSWORD).toBe('${POSTGRES_PASSWORD:?copy .env.example to .env}');
    expect(read('.gitignore')).toMatch(/^\.env$/m);
    expect(read('.dockerignore')).toMatch(/^\.env$/m);
  });

  describe.each(appCases)('%s', (name, { workspace, port }) => {
    const service = services[name];

    test('runs the one image and waits for a healthy rabbitmq (each node, with the cluster profile) and postgres', () => {
      expect(service.image).toBe(services.orchestrator.image);
      expect(service.depends_on).toEqual({
        rabbitmq: { condition: 'service_healthy' },
        'rabbitmq-2': { condition: 'service_healthy', required: false },
        'rabbitmq-3': { condition: 'service_healthy', required: false },
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
      const own = PROCESSES.find((process) => process.name === name)!;
      expect(flags.sort()).toEqual([...NODE_FLAGS, ...('nodeFlags' in own ? own.nodeFlags : [])].sort());
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

    test(`logs in to RabbitMQ as its own user, ${name} (not an administrator), whose password rabbitmq/start.sh sets`, () => {
      // Every node, in turn: without the cluster profile only the first resolves.
      const nodes = interpolate(service.environment?.AMQP_URL ?? '').split(',').map((url) => new URL(url));
      expect(nodes.map((amqp) => [amqp.hostname, amqp.port, decodeURIComponent(amqp.pathname.slice(1)), decodeURIComponent(amqp.username)])).toEqual(
        ['rabbitmq', ...CLUSTER_NODES].map((host) => [host, '5672', '/', name]),
      );
      const user = definitions.users.find((candidate: { name: string }) => candidate.name === name);
      expect(user?.tags).toEqual([]);
      const variable = `${name.toUpperCase()}_AMQP_PASSWORD`;
      expect(passwordVariable(service.environment?.AMQP_URL)).toBe(variable);
      // The broker gets the same variable, and its start script gives it to this user.
      expect(services.rabbitmq.environment?.[variable]).toBe(`\${${variable}:?copy .env.example to .env}`);
      expect(read('rabbitmq/start.sh')).toMatch(new RegExp(`for user in [a-z ]*\\b${name}\\b`));
    });

    test(`connects to the compose postgres as its own role, owning schema ${name}, whose password postgres/start.sh sets`, () => {
      const database = new URL(interpolate(service.environment?.DATABASE_URL ?? ''));
      const { POSTGRES_DB } = services.postgres.environment ?? {};
      const { role, schema } = processRoles(POSTGRES_DB!).find((candidate) => candidate.process === name)!;
      expect([database.hostname, decodeURIComponent(database.username), database.pathname, schema]).toEqual(['postgres', role, `/${POSTGRES_DB}`, name]);
      const variable = `${name.toUpperCase()}_DB_PASSWORD`;
      expect(passwordVariable(service.environment?.DATABASE_URL)).toBe(variable);
      expect(services.postgres.environment?.[variable]).toBe(`\${${variable}:?copy .env.example to .env}`);
      expect(read('postgres/start.sh')).toContain(`-v ${name}_password="$${variable}"`);
      expect(read('postgres/provision.sql')).toContain(`alter role "${role}" with login nosuperuser nocreatedb nocreaterole noinherit password :'${name}_password';`);
      expect(read('postgres/provision.sql')).toContain(`create schema if not exists "${schema}" authorization "${role}";`);
    });
  });
});

describe('observability in docker-compose.yml', () => {
  /** A service's bind mounts, by where they are mounted: the repository path (files that must exist). */
  const mountsOf = (service: Service) =>
    Object.fromEntries(
      (service.volumes ?? []).map((volume) => {
        const [source, target] = volume.split(':');
        expect(existsSync(`${root}${source}`)).toBe(true);
        return [target, source.replace(/^\.\//, '')];
      }),
    );
  const prometheus = services.prometheus;
  const grafana = services.grafana;

  test('prometheus reads its configuration from observability/prometheus.yml, mounted where --config.file says', () => {
    const configFile = prometheus.command?.find((flag) => flag.startsWith('--config.file='))?.split('=')[1];
    expect(mountsOf(prometheus)[configFile!]).toBe('observability/prometheus.yml');
    expect(prometheus.healthcheck?.test.join(' ')).toContain('/-/healthy');
  });

  const scrape: { scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[] } = parse(read('observability/prometheus.yml'));
  const targetsOf = (job: string) => scrape.scrape_configs.filter((config) => config.job_name === job).flatMap((config) => config.static_configs.flatMap((group) => group.targets));

  test.each(appCases)('prometheus scrapes %s at its service name and port', (name, { port }) => {
    expect(targetsOf('sagaflow')).toContain(`${name}:${port}`);
    expect(services[name].environment?.PORT).toBe(String(port));
  });

  test('prometheus scrapes RabbitMQ\'s plugin (totals and per queue) on the port compose publishes', () => {
    expect(targetsOf('rabbitmq')).toEqual(['rabbitmq:15692']);
    expect(targetsOf('rabbitmq-queues')).toEqual(['rabbitmq:15692']);
    expect(scrape.scrape_configs.find((config) => config.job_name === 'rabbitmq-queues')?.metrics_path).toBe('/metrics/detailed');
    expect(services.rabbitmq.ports).toContain('15692:15692');
    expect(targetsOf('sagaflow')).toHaveLength(Object.keys(apps).length);
  });

  const datasources: { datasources: { uid: string; type: string; url: string }[] } = parse(read('observability/grafana/provisioning/datasources/prometheus.yml'));
  const providers: { providers: { options: { path: string } }[] } = parse(read('observability/grafana/provisioning/dashboards/sagaflow.yml'));

  test('grafana gets its provisioning (a Prometheus datasource, a dashboard provider) and the dashboards, mounted', () => {
    const mounts = mountsOf(grafana);
    expect(mounts['/etc/grafana/provisioning']).toBe('observability/grafana/provisioning');
    const [provider] = providers.providers;
    expect(mounts[provider.options.path]).toBe('observability/grafana/dashboards');
    const [datasource] = datasources.datasources;
    expect(datasource).toMatchObject({ type: 'prometheus', url: `http://prometheus:${prometheus.ports?.[0].split(':')[1]}` });
    // Its home dashboard is one the provider loads.
    const home = grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? '';
    expect(home.startsWith(`${provider.options.path}/`)).toBe(true);
    expect(existsSync(`${root}observability/grafana/dashboards/${home.slice(provider.options.path.length + 1)}`)).toBe(true);
    expect(grafana.environment?.GF_SECURITY_ADMIN_PASSWORD).toBe('${GRAFANA_ADMIN_PASSWORD:?copy .env.example to .env}');
    expect(grafana.depends_on).toEqual({ prometheus: { condition: 'service_healthy' } });
  });

  describe('the Sagaflow dashboard', () => {
    type Panel = { type: string; title: string; datasource?: { uid: string }; targets?: { expr: string; datasource?: { uid: string } }[] };
    const dashboard: { uid: string; title: string; panels: Panel[] } = JSON.parse(read('observability/grafana/dashboards/sagaflow.json'));
    const queries = dashboard.panels.flatMap((panel) => panel.targets ?? []);
    const used = new Set(queries.flatMap(({ expr }) => expr.match(/\bsagaflow_\w+/g) ?? []).map((name) => name.replace(/_(bucket|sum|count)$/, '')));
    // Ours from the one module that defines them, and Node's process metrics under our prefix.
    const processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics, prefix: 'sagaflow_' });
    const defined = new Set([...definedMetricNames(), ...processMetrics.getMetricsAsArray().map((metric) => metric.name)]);

    test('parses, and every panel queries the provisioned Prometheus', () => {
      expect(dashboard.uid).toBe('sagaflow');
      expect(queries.length).toBeGreaterThan(10);
      const [{ uid }] = datasources.datasources;
      for (const panel of dashboard.panels.filter((candidate) => candidate.type !== 'row')) {
        expect([panel.title, panel.datasource?.uid]).toEqual([panel.title, uid]);
        for (const target of panel.targets ?? []) expect([panel.title, target.datasource?.uid]).toEqual([panel.title, uid]);
      }
    });

    test('uses only sagaflow_ metrics that the processes define', () => {
      expect(used.size).toBeGreaterThan(10);
      expect([...used].filter((name) => !defined.has(name))).toEqual([]);
    });

    test('shows every sagaflow_ metric of ours', () => {
      const ours = definedMetricNames().filter((name) => !processMetrics.getSingleMetric(name));
      expect(ours.filter((name) => !used.has(name))).toEqual([]);
    });

    test('shows RabbitMQ\'s dead-letter queues', () => {
      expect(queries.some(({ expr }) => expr.includes('rabbitmq_detailed_queue_messages') && expr.includes('dlq'))).toBe(true);
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
