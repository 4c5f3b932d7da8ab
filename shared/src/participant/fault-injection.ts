import type { ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import { attemptOf, FaultSpec, HEADERS, resendOf, type Envelope } from '../contracts/index.js';
import { failed, type StepReply } from '../contracts/replies.js';
import { flushLogsNow } from '../logging/logger.js';
import { envelopeLogFields } from '../logging/message-fields.js';
import type { CommandMiddleware } from './command-runner.js';

export class InjectedTransientError extends Error {}

/**
 * Fault plans (tests and demos): each command may carry, for its participant, what to do wrong. Wired
 * into the command runner only when FAULT_INJECTION is on, so the production path never reads a plan.
 */
export class FaultInjection implements CommandMiddleware {
  private readonly faults = new WeakMap<Envelope, FaultSpec | null>();

  constructor(private readonly logger: Logger) {}

  /** In the handler's place, inside the transaction: hangs, waits, fails the attempt, or refuses, as planned. */
  async around(command: Envelope, handle: () => Promise<StepReply>, delivery: ConsumeMessage): Promise<StepReply> {
    const fault = this.faultOf(command);
    if (!fault) return handle();
    // Like the crash faults, a hang is the first delivery's: redelivered (its process died meanwhile), it goes on.
    if (fault['no-reply'] && attemptOf(command) <= fault['no-reply'] && !delivery.fields.redelivered) {
      this.logger.warn({ ...envelopeLogFields(command), fault }, 'fault injected: hanging without a reply until the work timeout');
      return new Promise<never>(() => undefined);
    }
    if (fault.delay) await new Promise((resolve) => setTimeout(resolve, fault.delay));
    if (fault.error && attemptOf(command) <= fault.error) {
      throw new InjectedTransientError(`injected transient error on attempt ${attemptOf(command)} (fails the first ${fault.error})`);
    }
    if (fault.fail) return failed('INJECTED_FAILURE', fault.fail === true ? 'injected permanent failure' : fault.fail);
    return handle();
  }

  beforeCommit(command: Envelope, delivery: ConsumeMessage): void {
    if (this.faultOf(command)?.['crash-every-delivery']) this.crashNow(command, 'crash-every-delivery');
    this.crash(command, delivery, 'crash-before-commit');
  }

  afterCommit(command: Envelope, delivery: ConsumeMessage): void {
    this.crash(command, delivery, 'crash-after-commit');
  }

  replyCopies(command: Envelope): number {
    return this.faultOf(command)?.['duplicate-reply'] ? 2 : 1;
  }

  /**
   * Crash faults fire on the command's first delivery only: the redelivery after the restart goes
   * through, and so does a copy sent again (else each copy would crash the service anew).
   */
  private crash(command: Envelope, delivery: ConsumeMessage, point: 'crash-before-commit' | 'crash-after-commit'): void {
    if (!this.faultOf(command)?.[point] || delivery.fields.redelivered || resendOf(command) > 0) return;
    this.crashNow(command, point);
  }

  private crashNow(command: Envelope, fault: string): void {
    this.logger.warn({ ...envelopeLogFields(command), fault }, 'fault injected: crashing');
    flushLogsNow();
    process.kill(process.pid, 'SIGKILL');
  }

  private faultOf(command: Envelope): FaultSpec | null {
    let fault = this.faults.get(command);
    if (fault === undefined) {
      const header = command.headers?.[HEADERS.faultPlan];
      const parsed = typeof header === 'string' ? FaultSpec.safeParse(safeJson(header)) : undefined;
      fault = parsed?.success ? parsed.data : null;
      this.faults.set(command, fault);
    }
    return fault;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
