import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, readFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { PROCESSES, type ProcessName } from './processes.js';

export interface SystemOptions {
  /** The repository root (where orchestrator/ and services/ are). */
  rootDir: string;
  /** Environment for every process (AMQP_URL, DATABASE_URL, ...). */
  env: NodeJS.ProcessEnv;
  /** Port per process (a list: one per instance); defaults to the standard ones (3000, 3101-3104, then +10 per instance). */
  ports?: Partial<Record<ProcessName, number | number[]>>;
  /** How many instances of each process run side by side, as competing consumers (default 1). */
  instances?: number;
  /** 'console': prefixed lines on this process's stdout; a folder path: one log file per process. */
  output: 'console' | { logDir: string };
  /** How long a process may take to answer /health. */
  startTimeoutMs?: number;
  /** Start a process again when it dies on its own (a crash, an injected one too) — as a supervisor would. */
  restartCrashed?: boolean;
  /** More flags for every Node process (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile them). */
  nodeFlags?: string[];
}

/**
 * Source maps for stack traces; a young generation of 2 MB per semi-space instead of V8's default (up to
 * 32 MB on a large machine); an old generation of at most 128 MB, grown by 15% past the live heap after a
 * full collection rather than V8's larger factor. With glibc's malloc held to two arenas (NODE_ENV_DEFAULTS)
 * they keep peak RSS under 150 MB per process at no measured cost in speed (docs/performance.md has the
 * figures). Compose passes the same.
 */
export const NODE_FLAGS = ['--enable-source-maps', '--max-semi-space-size=2', '--max-old-space-size=128', '--heap-growing-percent=15'];
/** Environment every process gets unless the caller sets it: glibc's per-thread malloc arenas held RSS up. */
export const NODE_ENV_DEFAULTS = { MALLOC_ARENA_MAX: '2' };

/**
 * A process's environment: `<NAME>_AMQP_URL` and `<NAME>_DATABASE_URL` (e.g. `PAYMENT_AMQP_URL`), when set,
 * are its AMQP_URL and DATABASE_URL, so that each process logs in as its own broker user and database role.
 */
export function processEnv(name: ProcessName, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, AMQP_URL: env[ownVariable(name, 'AMQP_URL')] ?? env.AMQP_URL, DATABASE_URL: env[ownVariable(name, 'DATABASE_URL')] ?? env.DATABASE_URL };
}
export const ownVariable = (name: ProcessName, variable: 'AMQP_URL' | 'DATABASE_URL') => `${name.toUpperCase()}_${variable}`;

/** One running copy of a process: `orchestrator#1`, `payment#2`, ... */
type InstanceKey = `${ProcessName}#${number}`;
const keyOf = (name: ProcessName, instance: number): InstanceKey => `${name}#${instance}`;

/**
 * Starts, stops, kills and restarts the five real processes. Used by `npm start`, by the test suites
 * and by anyone writing failure-injection tests of their own.
 */
export class SagaflowSystem {
  private readonly children = new Map<InstanceKey, ChildProcess>();
  private readonly logs = new Map<InstanceKey, WriteStream>();
  /** Processes being stopped or killed on purpose: their exit is not a crash. */
  private readonly stopping = new Set<ChildProcess>();
  private stopped = false;
  /** How many times each process crashed and was started again. */
  readonly crashes = new Map<ProcessName, number>();

  constructor(private readonly options: SystemOptions) {
    if (typeof options.output === 'object') mkdirSync(options.output.logDir, { recursive: true });
  }

  get instances(): number {
    return this.options.instances ?? 1;
  }

  port(name: ProcessName, instance = 1): number {
    const configured = this.options.ports?.[name];
    if (Array.isArray(configured)) return configured[instance - 1];
    return (configured ?? PROCESSES.find((process) => process.name === name)!.port) + 10 * (instance - 1);
  }

  url(name: ProcessName = 'orchestrator', instance = 1): string {
    return `http://127.0.0.1:${this.port(name, instance)}`;
  }

  /** The URL of every instance of a process (e.g. to spread HTTP load over the orchestrators). */
  urls(name: ProcessName = 'orchestrator'): string[] {
    return Array.from({ length: this.instances }, (_, index) => this.url(name, index + 1));
  }

  /** Starts every process (every instance) and resolves once all answer /health with 200. */
  async start(): Promise<void> {
    const all = PROCESSES.flatMap((process) => Array.from({ length: this.instances }, (_, index) => [process.name, index + 1] as const));
    await Promise.all(all.map(([name, instance]) => this.startProcess(name, instance)));
  }

  async startProcess(name: ProcessName, instance = 1): Promise<void> {
    const key = keyOf(name, instance);
    if (this.stopped) throw new Error(`the system is stopped: ${label(name, instance)} is not started again`);
    if (this.children.has(key)) throw new Error(`${label(name, instance)} is already running`);
    const { entry, ...definition } = PROCESSES.find((process) => process.name === name)!;
    const ownFlags = 'nodeFlags' in definition ? definition.nodeFlags : [];
    const child = spawn(process.execPath, [...NODE_FLAGS, ...ownFlags, ...(this.options.nodeFlags ?? []), join(this.options.rootDir, entry)], {
      cwd: this.options.rootDir,
      env: { ...processEnv(name, { ...NODE_ENV_DEFAULTS, ...process.env, ...this.options.env }), PORT: String(this.port(name, instance)) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.set(key, child);
    this.pipeOutput(name, instance, child);
    child.once('exit', () => {
      if (this.children.get(key) === child) this.children.delete(key);
      if (this.options.restartCrashed && !this.stopping.has(child) && !this.stopped) {
        this.crashes.set(name, (this.crashes.get(name) ?? 0) + 1);
        void this.restartAfterCrash(name, instance);
      }
    });
    await this.waitHealthy(name, instance, child);
  }

  /** Starts a crashed process again, trying until it comes up (it may crash while starting, too). */
  private async restartAfterCrash(name: ProcessName, instance: number): Promise<void> {
    const key = keyOf(name, instance);
    for (let attempt = 1; !this.stopped && !this.children.has(key); attempt++) {
      try {
        await this.startProcess(name, instance);
        return;
      } catch (error) {
        if (this.children.has(key)) return; // started by someone else meanwhile
        process.stderr.write(`could not restart ${name} (attempt ${attempt}): ${(error as Error).message}\n`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(250 * attempt, 2_000)));
      }
    }
  }

  /**
   * Kills a process without warning (SIGKILL by default: nothing is flushed, nothing is closed), or asks
   * it to stop (SIGTERM). Resolves with its exit code once it has exited (null when killed by the signal).
   */
  async kill(name: ProcessName, signal: NodeJS.Signals = 'SIGKILL', instance = 1): Promise<number | null> {
    const child = this.children.get(keyOf(name, instance));
    if (!child) return null;
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    this.stopping.add(child);
    child.kill(signal);
    const [code] = await exited;
    return code;
  }

  /**
   * Freezes a process (SIGSTOP): it holds its connections and the messages in its hands, and answers nothing,
   * as a hung service would; `resume` (SIGCONT) lets it go on.
   */
  pause(name: ProcessName, instance = 1): void {
    const child = this.children.get(keyOf(name, instance));
    if (!child) throw new Error(`${label(name, instance)} is not running`);
    child.kill('SIGSTOP');
  }

  resume(name: ProcessName, instance = 1): void {
    this.children.get(keyOf(name, instance))?.kill('SIGCONT');
  }

  async restart(name: ProcessName, instance = 1): Promise<void> {
    await this.kill(name, 'SIGKILL', instance);
    await this.startProcess(name, instance);
  }

  /** The operating-system process ids of everything running (for CPU and memory readings). */
  pids(): number[] {
    return [...this.children.values()].map((child) => child.pid!).filter(Boolean);
  }

  /** Each running process's peak resident memory so far (VmHWM), in MB, by its label (`payment`, `payment-2`). */
  peakRssMb(): Record<string, number> {
    const peaks: Record<string, number> = {};
    for (const [key, child] of this.children) {
      const [name, instance] = key.split('#');
      try {
        peaks[label(name as ProcessName, Number(instance))] = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
      } catch {
        // exited meanwhile
      }
    }
    return peaks;
  }

  isRunning(name: ProcessName, instance = 1): boolean {
    return this.children.has(keyOf(name, instance));
  }

  /** Graceful stop of everything (SIGTERM), then SIGKILL for whatever is still up after the grace period. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopped = true;
    await Promise.all(
      [...this.children].map(async ([key, child]) => {
        const exited = once(child, 'exit');
        this.stopping.add(child);
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
        this.logs.get(key)?.end();
      }),
    );
  }

  private pipeOutput(name: ProcessName, instance: number, child: ChildProcess): void {
    const { output } = this.options;
    if (output === 'console') {
      const prefix = `${label(name, instance).padEnd(14)} | `;
      for (const stream of [child.stdout!, child.stderr!]) {
        let partial = '';
        stream.on('data', (chunk: Buffer) => {
          const lines = (partial + chunk.toString('utf8')).split('\n');
          partial = lines.pop()!;
          for (const line of lines) process.stdout.write(prefix + line + '\n');
        });
      }
      return;
    }
    const key = keyOf(name, instance);
    let log = this.logs.get(key);
    if (!log) {
      log = createWriteStream(join(output.logDir, `${label(name, instance)}.log`), { flags: 'a' });
      // A process's last lines after the system stopped have nowhere to go: dropped, not thrown.
      log.on('error', () => undefined);
      this.logs.set(key, log);
    }
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
  }

  private async waitHealthy(name: ProcessName, instance: number, child: ChildProcess): Promise<void> {
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 60_000);
    let exitCode: number | null = null;
    child.once('exit', (code) => (exitCode = code ?? -1));
    while (Date.now() < deadline) {
      if (exitCode !== null) throw new Error(`${label(name, instance)} exited with code ${exitCode} while starting (see its log)`);
      try {
        const response = await fetch(`${this.url(name, instance)}/health`);
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${label(name, instance)} did not become healthy within ${this.options.startTimeoutMs ?? 60_000} ms`);
  }
}

/** `payment` for the first instance, `payment-2` for the second: log file names and output prefixes. */
const label = (name: ProcessName, instance: number) => (instance === 1 ? name : `${name}-${instance}`);
