import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { PROCESSES, type ProcessName } from './processes.js';

export interface SystemOptions {
  /** The repository root (where orchestrator/ and services/ are). */
  rootDir: string;
  /** Environment for every process (AMQP_URL, DATABASE_URL, ...). */
  env: NodeJS.ProcessEnv;
  /** Port per process; defaults to the standard ones (3000, 3101-3104). */
  ports?: Partial<Record<ProcessName, number>>;
  /** 'console': prefixed lines on this process's stdout; a folder path: one log file per process. */
  output: 'console' | { logDir: string };
  /** How long a process may take to answer /health. */
  startTimeoutMs?: number;
  /** Start a process again when it dies on its own (a crash, an injected one too) — as a supervisor would. */
  restartCrashed?: boolean;
}

/**
 * Starts, stops, kills and restarts the five real processes. Used by `npm start`, by the test suites
 * and by anyone writing failure-injection tests of their own.
 */
export class SagaflowSystem {
  private readonly children = new Map<ProcessName, ChildProcess>();
  private readonly logs = new Map<ProcessName, WriteStream>();
  /** Processes being stopped or killed on purpose: their exit is not a crash. */
  private readonly stopping = new Set<ChildProcess>();
  private stopped = false;
  /** How many times each process crashed and was started again. */
  readonly crashes = new Map<ProcessName, number>();

  constructor(private readonly options: SystemOptions) {
    if (typeof options.output === 'object') mkdirSync(options.output.logDir, { recursive: true });
  }

  port(name: ProcessName): number {
    return this.options.ports?.[name] ?? PROCESSES.find((process) => process.name === name)!.port;
  }

  url(name: ProcessName = 'orchestrator'): string {
    return `http://127.0.0.1:${this.port(name)}`;
  }

  /** Starts every process and resolves once all answer /health with 200. */
  async start(): Promise<void> {
    await Promise.all(PROCESSES.map((process) => this.startProcess(process.name)));
  }

  async startProcess(name: ProcessName): Promise<void> {
    if (this.children.has(name)) throw new Error(`${name} is already running`);
    const entry = PROCESSES.find((process) => process.name === name)!.entry;
    const child = spawn(process.execPath, ['--enable-source-maps', join(this.options.rootDir, entry)], {
      cwd: this.options.rootDir,
      env: { ...process.env, ...this.options.env, PORT: String(this.port(name)) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.set(name, child);
    this.pipeOutput(name, child);
    child.once('exit', () => {
      if (this.children.get(name) === child) this.children.delete(name);
      if (this.options.restartCrashed && !this.stopping.has(child) && !this.stopped) {
        this.crashes.set(name, (this.crashes.get(name) ?? 0) + 1);
        void this.restartAfterCrash(name);
      }
    });
    await this.waitHealthy(name, child);
  }

  /** Starts a crashed process again, trying until it comes up (it may crash while starting, too). */
  private async restartAfterCrash(name: ProcessName): Promise<void> {
    for (let attempt = 1; !this.stopped && !this.children.has(name); attempt++) {
      try {
        await this.startProcess(name);
        return;
      } catch (error) {
        if (this.children.has(name)) return; // started by someone else meanwhile
        process.stderr.write(`could not restart ${name} (attempt ${attempt}): ${(error as Error).message}\n`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(250 * attempt, 2_000)));
      }
    }
  }

  /**
   * Kills a process without warning (SIGKILL by default: nothing is flushed, nothing is closed), or asks
   * it to stop (SIGTERM). Resolves with its exit code once it has exited (null when killed by the signal).
   */
  async kill(name: ProcessName, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    const child = this.children.get(name);
    if (!child) return null;
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    this.stopping.add(child);
    child.kill(signal);
    const [code] = await exited;
    return code;
  }

  async restart(name: ProcessName): Promise<void> {
    await this.kill(name);
    await this.startProcess(name);
  }

  isRunning(name: ProcessName): boolean {
    return this.children.has(name);
  }

  /** Graceful stop of everything (SIGTERM), then SIGKILL for whatever is still up after the grace period. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopped = true;
    await Promise.all(
      [...this.children].map(async ([name, child]) => {
        const exited = once(child, 'exit');
        this.stopping.add(child);
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
        this.logs.get(name)?.end();
      }),
    );
  }

  private pipeOutput(name: ProcessName, child: ChildProcess): void {
    const { output } = this.options;
    if (output === 'console') {
      const prefix = `${name.padEnd(12)} | `;
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
    let log = this.logs.get(name);
    if (!log) {
      log = createWriteStream(join(output.logDir, `${name}.log`), { flags: 'a' });
      this.logs.set(name, log);
    }
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
  }

  private async waitHealthy(name: ProcessName, child: ChildProcess): Promise<void> {
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 60_000);
    let exitCode: number | null = null;
    child.once('exit', (code) => (exitCode = code ?? -1));
    while (Date.now() < deadline) {
      if (exitCode !== null) throw new Error(`${name} exited with code ${exitCode} while starting (see its log)`);
      try {
        const response = await fetch(`${this.url(name)}/health`);
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${name} did not become healthy within ${this.options.startTimeoutMs ?? 60_000} ms`);
  }
}
