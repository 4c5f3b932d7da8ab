import { useState } from 'preact/hooks';
import { api, type ConsoleSaga, query, SAGA_STATUSES } from './api';
import { ago, dateTime, label, money } from './format';
import { useLiveEvents, useResource } from './live';
import { Badge, Empty } from './widgets';

/** The search as the address keeps it (so that a search can be bookmarked and shared). */
const FILTERS = ['status', 'orderId', 'customerId', 'stuckForSeconds', 'runningForSeconds', 'createdFrom', 'createdTo', 'setAside', 'sort'] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;
const LIMIT = 100;

const fromAddress = (params: URLSearchParams): Filters => Object.fromEntries(FILTERS.flatMap((name) => (params.get(name) ? [[name, params.get(name)!]] : [])));

/** The console's query: the form's local times become ISO instants; newest first unless asked otherwise. */
function consoleQuery(filters: Filters): string {
  const instant = (local?: string) => (local ? new Date(local).toISOString() : undefined);
  return query({
    ...filters,
    createdFrom: instant(filters.createdFrom),
    createdTo: instant(filters.createdTo),
    setAside: filters.setAside === 'true' ? 'true' : undefined,
    sort: filters.sort ?? '-createdAt',
    limit: String(LIMIT),
  });
}

/** Where a saga is: the step it waits on, the step that needs a person, or why it was undone. */
function whereItIs(saga: ConsoleSaga) {
  if (saga.awaiting) return `${saga.awaiting.action === 'compensate' ? 'undoing ' : ''}${saga.awaiting.step}`;
  if (saga.saga.status === 'COMPENSATED') return <span class="muted">{saga.failureReason}</span>;
  const stopped = saga.saga.steps.find((step) => step.status === 'FAILED' || step.status === 'COMPENSATION_FAILED');
  return stopped ? stopped.name : <span class="muted">—</span>;
}

export function SagasPage({ params }: { params: URLSearchParams }) {
  const filters = fromAddress(params);
  const search = consoleQuery(filters);
  const sagas = useResource(() => api<ConsoleSaga[]>(`/console/sagas${search}`), search);
  useLiveEvents((event) => event.type !== 'dead-letters' && sagas.refresh());

  return (
    <div class="page">
      <div class="page-head">
        <div>
          <h1>Sagas</h1>
          <p class="muted">Every order’s saga, newest first. Search by state, order, customer or time; the list follows changes live.</p>
        </div>
      </div>
      <SearchForm filters={filters} />
      <section class="card flush">
        {sagas.error && <p class="form-error pad">{sagas.error}</p>}
        {sagas.data && sagas.data.length === 0 && <Empty>No saga matches this search.</Empty>}
        {sagas.data && sagas.data.length > 0 && (
          <table class="table clickable" data-search={search}>
            <thead>
              <tr>
                <th>Order</th>
                <th>Customer</th>
                <th>Saga</th>
                <th>Step</th>
                <th class="num">Total</th>
                <th>Started</th>
                <th>Last change</th>
              </tr>
            </thead>
            <tbody>
              {sagas.data.map((saga) => (
                <tr key={saga.saga.id} data-order={saga.orderId} onClick={(event) => (event.target as HTMLElement).closest('a, button') || (location.hash = `#/sagas/${saga.orderId}`)}>
                  <td>
                    <a class="mono" href={`#/sagas/${saga.orderId}`} title={saga.orderId}>
                      {saga.orderId.slice(0, 8)}…{saga.orderId.slice(-4)}
                    </a>
                  </td>
                  <td class="ellipsis" title={saga.customerId}>
                    {saga.customerId}
                  </td>
                  <td>
                    <Badge status={saga.saga.status} />
                    {saga.saga.setAside && <span class="tag bad" title={saga.saga.setAside.reason}>set aside</span>}
                  </td>
                  <td class="ellipsis wide">{whereItIs(saga)}</td>
                  <td class="num">{money(saga.total, saga.currency)}</td>
                  <td title={dateTime(saga.createdAt)}>{ago(saga.createdAt)}</td>
                  <td title={dateTime(saga.updatedAt)}>{ago(saga.updatedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {sagas.data?.length === LIMIT && <p class="muted pad small">The first {LIMIT} shown: narrow the search to see others.</p>}
        {!sagas.data && sagas.loading && <Empty>Loading…</Empty>}
      </section>
    </div>
  );
}

function SearchForm({ filters }: { filters: Filters }) {
  const [draft, setDraft] = useState<Filters>(filters);
  const set = (name: keyof Filters) => (event: Event) => {
    const input = event.currentTarget as HTMLInputElement;
    setDraft({ ...draft, [name]: input.type === 'checkbox' ? (input.checked ? 'true' : '') : input.value });
  };
  const go = (next: Filters) => {
    const kept = Object.entries(next).filter(([, value]) => value);
    location.hash = `#/sagas${kept.length ? `?${new URLSearchParams(kept)}` : ''}`;
  };
  return (
    <form
      class="card search"
      onSubmit={(event) => {
        event.preventDefault();
        go(draft);
      }}
    >
      <label class="field">
        <span>Status</span>
        <select name="status" value={draft.status ?? ''} onChange={set('status')}>
          <option value="">Any</option>
          {SAGA_STATUSES.map((status) => (
            <option value={status}>{label(status)}</option>
          ))}
        </select>
      </label>
      <label class="field">
        <span>Order id</span>
        <input name="orderId" placeholder="01a1fffc-…" value={draft.orderId ?? ''} onInput={set('orderId')} spellcheck={false} />
      </label>
      <label class="field">
        <span>Customer</span>
        <input name="customerId" value={draft.customerId ?? ''} onInput={set('customerId')} spellcheck={false} />
      </label>
      <label class="field">
        <span>Stuck for ≥ (s)</span>
        <input name="stuckForSeconds" type="number" min={1} value={draft.stuckForSeconds ?? ''} onInput={set('stuckForSeconds')} />
      </label>
      <label class="field">
        <span>Running for ≥ (s)</span>
        <input name="runningForSeconds" type="number" min={1} value={draft.runningForSeconds ?? ''} onInput={set('runningForSeconds')} />
      </label>
      <label class="field">
        <span>Started from</span>
        <input name="createdFrom" type="datetime-local" step={1} value={draft.createdFrom ?? ''} onInput={set('createdFrom')} />
      </label>
      <label class="field">
        <span>Started before</span>
        <input name="createdTo" type="datetime-local" step={1} value={draft.createdTo ?? ''} onInput={set('createdTo')} />
      </label>
      <label class="field">
        <span>Order</span>
        <select name="sort" value={draft.sort ?? '-createdAt'} onChange={set('sort')}>
          <option value="-createdAt">Newest first</option>
          <option value="updatedAt">Longest without progress first</option>
        </select>
      </label>
      <label class="check">
        <input name="setAside" type="checkbox" checked={draft.setAside === 'true'} onChange={set('setAside')} />
        <span>Set aside only</span>
      </label>
      <div class="search-actions">
        <button type="submit" class="button primary">
          Search
        </button>
        <button
          type="button"
          class="button"
          onClick={() => {
            setDraft({});
            go({});
          }}
        >
          Clear
        </button>
      </div>
    </form>
  );
}

