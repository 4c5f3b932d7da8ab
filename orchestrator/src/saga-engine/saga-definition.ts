import { DEFAULT_RETRY_POLICY, type CommandContract, type RetryPolicy } from '@sagaflow/shared';
import type { z } from 'zod';

/** What a command builder may know about the saga besides its data. */
export interface SagaFacts {
  /** Why the saga is being compensated (the failed step's code and reason); null while all goes well. */
  failureReason: string | null;
}

export type CommandBuilder<D, P = unknown> = (data: D, saga: SagaFacts) => P;

/** One participant call: which command to send and how to build it from the saga's data. */
export interface Invocation<D> {
  command: CommandContract;
  build: CommandBuilder<D>;
}

export interface StepDefinition<D> {
  name: string;
  invoke: Invocation<D>;
  /** Folds the success reply's result into the saga's data: returns new data, leaves the data it is given unchanged. */
  onSuccess?: (data: D, result: any) => D;
  /** What undoes the step; absent for steps that need no undo. */
  compensation?: Invocation<D>;
  /** After the pivot a step is never compensated: the saga has committed to finish. */
  afterPivot: boolean;
  /** Overrides of the saga's retry policy for this step. */
  retry?: Partial<RetryPolicy>;
  /** Overrides the saga's work timeout (start-to-close) for this step. */
  workTimeoutMs?: number;
}

/** How the participants retry a saga's commands (each command carries its policy). */
export interface SagaPolicy {
  /** Steps before the pivot: after the last attempt the message is dead-lettered and the step waits for a person. */
  retry: RetryPolicy;
  /** Steps after the pivot (and after compensation): retried until they succeed — in practice, this many attempts. */
  retryAfterPivot: RetryPolicy;
  /** Compensations: failures (refusals too) are retried with this back-off; past the last attempt the saga is COMPENSATION_FAILED. */
  compensationRetry: RetryPolicy;
  /**
   * Start-to-close: how long a participant may work on one attempt of a command, its wait in the queue not
   * counted. Past it the attempt fails and the participant retries it with the step's back-off. The saga never
   * sends a command again because no reply came yet: the broker holds what it has confirmed.
   */
  workTimeoutMs: number;
  /**
   * A saga still before its pivot this long after it started is compensated, and the command it waits on
   * expires unexecuted. The one timer that cancels an order.
   */
  deadlineMs: number;
}

export const DEFAULT_SAGA_POLICY: SagaPolicy = {
  retry: DEFAULT_RETRY_POLICY,
  retryAfterPivot: { ...DEFAULT_RETRY_POLICY, attempts: 50 },
  compensationRetry: { ...DEFAULT_RETRY_POLICY, attempts: 20 },
  workTimeoutMs: 30_000,
  deadlineMs: 5 * 60_000,
};

export interface SagaDefinition<D> {
  name: string;
  policy: SagaPolicy;
  steps: StepDefinition<D>[];
  /** Runs once every compensation is done (e.g. tell the customer why), before the saga ends COMPENSATED. */
  afterCompensation?: StepDefinition<D>;
}

/**
 * A small fluent builder so a saga reads top to bottom as its flow:
 *
 *   defineSaga<Data>('order')
 *     .step('reserve-inventory')
 *       .invoke(InventoryCommands.reserve, (data) => ({ ... }))
 *       .compensateWith(InventoryCommands.release, (data) => ({ ... }))
 *     .pivot()
 *     .step('notify').invoke(...)
 *     .build();
 */
export function defineSaga<D>(name: string, policy: Partial<SagaPolicy> = {}): SagaBuilder<D> {
  return new SagaBuilder<D>(name, { ...DEFAULT_SAGA_POLICY, ...policy });
}

export class SagaBuilder<D> {
  private readonly steps: StepDefinition<D>[] = [];
  private afterCompensationStep?: StepDefinition<D>;
  private pastPivot = false;

  constructor(
    private readonly name: string,
    private readonly policy: SagaPolicy,
  ) {}

  step(name: string): StepBuilder<D> {
    this.requireNewName(name);
    return new StepBuilder<D>(this, (step) => this.steps.push(step), name, this.pastPivot);
  }

  /** The point of no return: steps after it are only ever retried, never compensated. */
  pivot(): this {
    this.pastPivot = true;
    return this;
  }

  afterCompensation(name: string): StepBuilder<D> {
    this.requireNewName(name);
    return new StepBuilder<D>(this, (step) => (this.afterCompensationStep = step), name, true);
  }

  /** Steps are found by name in the saga's state, so names must be unique. */
  private requireNewName(name: string): void {
    if (this.steps.some((step) => step.name === name) || this.afterCompensationStep?.name === name) {
      throw new Error(`saga ${this.name}: step ${name} defined twice`);
    }
  }

  build(): SagaDefinition<D> {
    if (this.steps.length === 0) throw new Error(`saga ${this.name} has no steps`);
    for (const step of this.steps) {
      if (step.afterPivot && step.compensation) throw new Error(`saga ${this.name}: step ${step.name} is after the pivot and cannot have a compensation`);
    }
    return { name: this.name, policy: this.policy, steps: [...this.steps], afterCompensation: this.afterCompensationStep };
  }
}

/** A named step waiting for its command. */
export class StepBuilder<D> {
  constructor(
    private readonly saga: SagaBuilder<D>,
    private readonly add: (step: StepDefinition<D>) => void,
    private readonly name: string,
    private readonly afterPivot: boolean,
  ) {}

  invoke<P extends z.ZodType, R extends z.ZodType>(command: CommandContract<P, R>, build: CommandBuilder<D, NoInfer<z.input<P>>>): InvokedStep<D, R> {
    const step: StepDefinition<D> = { name: this.name, invoke: { command, build }, afterPivot: this.afterPivot };
    this.add(step);
    return new InvokedStep<D, R>(this.saga, step);
  }
}

/** A step with its command; optionally folds the reply into the data and names its compensation. */
export class InvokedStep<D, R extends z.ZodType> {
  constructor(
    private readonly saga: SagaBuilder<D>,
    private readonly definition: StepDefinition<D>,
  ) {}

  onSuccess(fold: (data: D, result: z.output<R>) => D): this {
    this.definition.onSuccess = fold;
    return this;
  }

  compensateWith<P extends z.ZodType>(command: CommandContract<P>, build: CommandBuilder<D, NoInfer<z.input<P>>>): this {
    this.definition.compensation = { command, build };
    return this;
  }

  /** Retries this step differently from the saga's policy. */
  retry(policy: Partial<RetryPolicy>): this {
    this.definition.retry = policy;
    return this;
  }

  /** Lets the participant work this long on one attempt of this step's command (instead of the saga's work timeout). */
  timeout(ms: number): this {
    this.definition.workTimeoutMs = ms;
    return this;
  }

  // The next part of the saga.
  step(name: string): StepBuilder<D> {
    return this.saga.step(name);
  }
  pivot(): SagaBuilder<D> {
    return this.saga.pivot();
  }
  afterCompensation(name: string): StepBuilder<D> {
    return this.saga.afterCompensation(name);
  }
  build(): SagaDefinition<D> {
    return this.saga.build();
  }
}
