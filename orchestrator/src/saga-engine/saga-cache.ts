import { FINAL_SAGA_STATUSES } from '@sagaflow/shared';
import type { Saga } from './saga.entities.js';

/**
 * The state this orchestrator last saved of each saga in flight, so applying a reply usually needs no
 * read. It is never the authority: every save checks the saga's version, and a saga someone else moved
 * meanwhile (a timer, an operator, a second orchestrator) is read again and decided anew. A copy is
 * taken out while a transition is decided and put back only once saved, so a failed attempt never
 * leaves a half-applied state behind. Ended sagas leave; the oldest go first beyond `capacity`.
 */
export class SagaCache {
  private readonly sagas = new Map<string, Saga>();

  constructor(private readonly capacity = 5_000) {}

  /** The saga as last saved here, removed from the cache (put it back with `keep` once saved again). */
  take(sagaId: string): Saga | undefined {
    const saga = this.sagas.get(sagaId);
    this.sagas.delete(sagaId);
    return saga;
  }

  /** Remembers a saga just saved (at its new version); forgets it if it has ended. */
  keep(saga: Saga): void {
    this.sagas.delete(saga.id);
    if (FINAL_SAGA_STATUSES.includes(saga.status)) return;
    this.sagas.set(saga.id, saga);
    if (this.sagas.size > this.capacity) this.sagas.delete(this.sagas.keys().next().value!);
  }

  forget(sagaId: string): void {
    this.sagas.delete(sagaId);
  }

  get size(): number {
    return this.sagas.size;
  }
}
