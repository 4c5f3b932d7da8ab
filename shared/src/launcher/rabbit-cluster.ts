import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where a cluster's clients and tools reach it. */
export interface BrokerEndpoints {
  /** One AMQP URL per node (guest on vhost /): a client fails over from one to the next. */
  amqpUrls: string[];
  /** One management API URL per node, with guest's credentials. */
  managementUrls: string[];
}

export interface RabbitClusterOptions {
  /** Data, logs and the shared Erlang cookie go here, a folder per node; `stop()` removes it (a new temporary folder). */
  baseDir?: string;
  /** How many nodes (3). */
  nodes?: number;
  /** Node i (from 1) listens on AMQP `basePort + i`, management `basePort + 10000 + i`, distribution `basePort + 20000 + i` (5700). */
  basePort?: number;
  /** Node names are `<prefix>-<i>@localhost` (sagaflow). */
  prefix?: string;
  /** Where Debian's rabbitmq-server keeps its scripts. */
  binDir?: string;
}

export interface ClusterNode {
  index: number;
  /** The Erlang node name, e.g. `sagaflow-1@localhost`. */
  name: string;
  amqpPort: number;
  managementPort: number;
  distPort: number;
  dir: string;
}

/**
 * A RabbitMQ cluster on this machine, for tests, the chaos run and the bench: Debian's rabbitmq-server,
 * each node with its own name, ports and data directory, sharing one Erlang cookie. Nodes can be SIGKILLed
 * and started again; a restarted node rejoins the cluster from its own data.
 */
export class LocalRabbitCluster {
  readonly nodes: ClusterNode[];
  private readonly binDir: string;
  private readonly children = new Map<number, ChildProcess>();
  private readonly baseDir: string;

  constructor(options: RabbitClusterOptions = {}) {
    const count = options.nodes ?? 3;
    const base = options.basePort ?? 5700;
    const prefix = options.prefix ?? 'sagaflow';
    this.baseDir = options.baseDir ?? mkdtempSync(join(tmpdir(), `${prefix}-cluster-`));
    this.binDir = options.binDir ?? '/usr/lib/rabbitmq/bin';
    this.nodes = Array.from({ length: count }, (_, at) => {
      const index = at + 1;
      return {
        index,
        name: `${prefix}-${index}@localhost`,
        amqpPort: base + index,
        managementPort: base + 10_000 + index,
        distPort: base + 20_000 + index,
        dir: join(this.baseDir, `node-${index}`),
      };
    });
  }

  get endpoints(): BrokerEndpoints {
    return {
      amqpUrls: this.nodes.map((node) => `amqp://guest:guest@127.0.0.1:${node.amqpPort}/%2F`),
      managementUrls: this.nodes.map((node) => `http://guest:guest@127.0.0.1:${node.managementPort}`),
    };
  }

  /** Starts every node, joins the others to the first, and resolves once all run as one cluster. */
  async start(): Promise<void> {
    mkdirSync(this.baseDir, { recursive: true });
    const cookie = join(this.baseDir, '.erlang.cookie');
    if (!existsSync(cookie)) writeFileSync(cookie, `SAGAFLOW${Date.now()}`, { mode: 0o400 });
    try {
      await Promise.all(this.nodes.map((node) => this.startNode(node.index)));
      const [first, ...others] = this.nodes;
      await Promise.all(
        others.map(async (node) => {
          await this.ctl(node, 'stop_app');
          await this.ctl(node, 'join_cluster', first.name);
          await this.ctl(node, 'start_app');
        }),
      );
      const running = await this.runningNodes(first);
      if (running.length !== this.nodes.length) throw new Error(`the cluster formed with ${running.join(', ')} only`);
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** Starts one node (again) and resolves once it has booted (and, with data, rejoined its cluster). */
  async startNode(index: number): Promise<void> {
    const node = this.node(index);
    if (this.isRunning(index)) return;
    mkdirSync(join(node.dir, 'log'), { recursive: true });
    writeFileSync(
      join(node.dir, 'rabbitmq.conf'),
      [
        `listeners.tcp.1 = 127.0.0.1:${node.amqpPort}`,
        `management.tcp.ip = 127.0.0.1`,
        `management.tcp.port = ${node.managementPort}`,
        // Leaders and consumers show in the management API within half a second (5 s by default).
        'collect_statistics_interval = 500',
        '',
      ].join('\n'),
    );
    writeFileSync(join(node.dir, 'enabled_plugins'), '[rabbitmq_management].\n');
    writeFileSync(join(node.dir, 'rabbitmq-env.conf'), '');
    const output = openSync(join(node.dir, 'log', 'console.log'), 'a');
    const child = spawn(join(this.binDir, 'rabbitmq-server'), [], { env: this.nodeEnv(node), stdio: ['ignore', output, output] });
    closeSync(output);
    this.children.set(index, child);
    child.once('exit', () => this.children.get(index) === child && this.children.delete(index));
    try {
      // Waits for the pid file, then for the node to boot (await_startup fails at once before it registers).
      await this.ctl(node, 'wait', join(node.dir, 'pid'), '--timeout', '120');
    } catch (error) {
      throw new Error(`node ${node.name} did not start (logs in ${join(node.dir, 'log')}): ${(error as Error).message}`);
    }
  }

  /** SIGKILLs a node: no goodbye to its peers or its clients, as when a machine is lost. */
  async killNode(index: number): Promise<void> {
    const child = this.children.get(index);
    const pid = this.pid(index) ?? child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    if (child && child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
    rmSync(join(this.node(index).dir, 'pid'), { force: true });
  }

  isRunning(index: number): boolean {
    return this.children.has(index);
  }

  /** The nodes the given node sees running in its cluster. */
  async runningNodes(via: ClusterNode = this.nodes.find((node) => this.isRunning(node.index)) ?? this.nodes[0]): Promise<string[]> {
    const { stdout } = await this.ctl(via, 'cluster_status', '--formatter', 'json');
    return (JSON.parse(stdout) as { running_nodes: string[] }).running_nodes;
  }

  node(index: number): ClusterNode {
    const node = this.nodes.find((candidate) => candidate.index === index);
    if (!node) throw new Error(`no node ${index} in a cluster of ${this.nodes.length}`);
    return node;
  }

  /** The node called `name` (as the management API gives a queue's leader). */
  nodeNamed(name: string): ClusterNode | undefined {
    return this.nodes.find((node) => node.name === name);
  }

  /** Kills every node and removes their data. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => this.killNode(node.index)));
    rmSync(this.baseDir, { recursive: true, force: true });
  }

  /** rabbitmqctl against one node, with the cluster's cookie. */
  ctl(node: ClusterNode, ...args: string[]): Promise<{ stdout: string }> {
    return run(join(this.binDir, 'rabbitmqctl'), ['-n', node.name, ...args], { env: this.nodeEnv(node), timeout: 150_000 });
  }

  /** The operating-system process of a running node (its Erlang VM), e.g. to kill it by hand. */
  pid(index: number): number | undefined {
    const file = join(this.node(index).dir, 'pid');
    const pid = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : NaN;
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  private nodeEnv(node: ClusterNode): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      // The shared cookie is $HOME/.erlang.cookie, for the nodes and for rabbitmqctl alike.
      HOME: this.baseDir,
      RABBITMQ_NODENAME: node.name,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(node.amqpPort),
      RABBITMQ_DIST_PORT: String(node.distPort),
      RABBITMQ_MNESIA_BASE: join(node.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(node.dir, 'log'),
      RABBITMQ_PID_FILE: join(node.dir, 'pid'),
      RABBITMQ_CONFIG_FILE: join(node.dir, 'rabbitmq.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(node.dir, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(node.dir, 'enabled_plugins'),
      // Not the machine's own node's settings (/etc/rabbitmq/rabbitmq-env.conf names it).
      RABBITMQ_CONF_ENV_FILE: join(node.dir, 'rabbitmq-env.conf'),
      ERL_EPMD_ADDRESS: '127.0.0.1',
    };
  }
}
