import { ConfirmTimeoutError } from './errors.js';

/** A publish awaiting its confirm: called once, with nothing (confirmed) or why not. */
export type Settle = (error: Error | null) => void;

/**
 * Publishes awaiting the broker's confirm on one channel. If some wait and none is confirmed for `timeoutMs`,
 * the channel is wedged (seen once in a quorum queue failover): they fail as an outage, so their senders
 * hold and retry them, instead of a saga waiting on a confirm that never comes.
 */
export class ConfirmWatch {
  private readonly waiting = new Set<Settle>();
  private confirms = 0;
  private seen = 0;
  private quietSince = 0;

  constructor(private readonly timeoutMs: number) {}

  /** Wraps a publish's settle: counted while it waits, once only. */
  track(settle: Settle): Settle {
    const tracked: Settle = (error) => {
      if (!this.waiting.delete(tracked)) return;
      this.confirms++;
      settle(error);
    };
    this.waiting.add(tracked);
    return tracked;
  }

  /** A publish that never went out (the channel closed under it): nothing to wait for. */
  forget(settle: Settle): void {
    this.waiting.delete(settle);
  }

  /** Called now and then: true (and the waiting failed) once nothing was confirmed for the timeout while some waited. */
  check(now: number): boolean {
    if (this.waiting.size === 0 || this.confirms !== this.seen) {
      this.seen = this.confirms;
      this.quietSince = now;
      return false;
    }
    if (now - this.quietSince < this.timeoutMs) return false;
    const error = new ConfirmTimeoutError(`${this.waiting.size} publishes not confirmed within ${this.timeoutMs / 1000} s; the channel is opened anew`);
    for (const settle of [...this.waiting]) settle(error);
    this.quietSince = now;
    return true;
  }
}
