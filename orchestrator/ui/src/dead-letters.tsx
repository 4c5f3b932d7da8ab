import { useState } from 'preact/hooks';
import { api, type DeadLetter, type DeadLetterPage } from './api';
import { ago, dateTime } from './format';
import { useLiveEvents, useResource } from './live';
import { askReason, Badge, Empty, Id, notify, Section } from './widgets';

const PAGE = 500;
const count = (n: number) => (n === 1 ? '1 dead letter' : `${n} dead letters`);
const idsOf = (letters: DeadLetter[]) => [...new Set(letters.map((letter) => letter.messageId))];

/** What replaying or discarding asks and says. Both ask why: the reason goes into each saga's history. */
const ACTIONS = {
  replay: {
    verb: 'Replay',
    done: 'Replayed',
    body: 'Each goes back to the queue it came from with a fresh retry budget. The participant’s inbox keeps a command that was already handled from acting twice.',
    required: false,
  },
  discard: {
    verb: 'Discard',
    done: 'Discarded',
    body: 'They are removed for good: their commands will not run. The saga waits on until its timeout or a person decides.',
    required: true,
  },
};
type Action = keyof typeof ACTIONS;

/** Replays or discards the letters once the operator has said why; whether it was done. */
export async function handle(action: Action, letters: DeadLetter[]): Promise<boolean> {
  const { verb, done, body, required } = ACTIONS[action];
  const reason = await askReason({ title: `${verb} ${count(idsOf(letters).length)}`, body, confirm: verb, danger: action === 'discard', required });
  if (reason === null) return false;
  try {
    const result = await api<{ replayed?: DeadLetter[]; discarded?: DeadLetter[]; notFound: string[] }>(`/console/dead-letters/${action}`, {
      method: 'POST',
      body: { messageIds: idsOf(letters), ...(reason ? { reason } : {}) },
    });
    const handled = (result.replayed ?? result.discarded ?? []).length;
    notify(`${done} ${count(handled)}${result.notFound.length ? `; ${result.notFound.length} no longer waiting` : ''}`);
    return true;
  } catch (error) {
    notify((error as Error).message, true);
    return false;
  }
}

interface RowsProps {
  letters: DeadLetter[];
  onDone: () => void;
  showOrder: boolean;
  selected?: Set<string>;
  onSelect?: (messageIds: string[], on: boolean) => void;
}

export function DeadLetterRows({ letters, onDone, showOrder, selected, onSelect }: RowsProps) {
  const act = async (action: Action, letter: DeadLetter) => (await handle(action, [letter])) && onDone();
  return (
    <div class="scroll">
      <table class="table compact letters">
        <thead>
          <tr>
            {onSelect && (
              <th class="pick">
                <input
                  type="checkbox"
                  aria-label="Select all"
                  checked={letters.every((letter) => selected?.has(letter.messageId))}
                  onChange={(event) => onSelect(idsOf(letters), event.currentTarget.checked)}
                />
              </th>
            )}
            <th>Message</th>
            {showOrder && <th>Order</th>}
            <th>Step</th>
            <th class="num">Attempts</th>
            <th>Error</th>
            <th>Dead-lettered</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {letters.map((letter, index) => (
            <tr key={`${letter.messageId}-${index}`} data-message={letter.messageId}>
              {onSelect && (
                <td class="pick">
                  <input type="checkbox" aria-label={`Select ${letter.messageId}`} checked={selected?.has(letter.messageId)} onChange={(event) => onSelect([letter.messageId], event.currentTarget.checked)} />
                </td>
              )}
              <td class="nowrap">
                <span class="mono small">{letter.type ?? '(no type)'}</span> <Id value={letter.messageId} />
              </td>
              {showOrder && (
                <td class="nowrap">
                  {letter.orderId ? (
                    <a class="mono" href={`#/sagas/${letter.orderId}`}>
                      {letter.orderId.slice(0, 8)}…
                    </a>
                  ) : (
                    <span class="muted">no saga</span>
                  )}{' '}
                  {letter.sagaStatus && <Badge status={letter.sagaStatus} />}
                </td>
              )}
              <td class="nowrap">{letter.step ?? '—'}</td>
              <td class="num">{letter.attempts ?? '—'}</td>
              <td class="detail" title={letter.error ?? ''}>
                {letter.error ?? <span class="muted">—</span>}
              </td>
              <td class="nowrap" title={dateTime(letter.deadLetteredAt ?? letter.lastFailureAt)}>
                {ago(letter.deadLetteredAt ?? letter.lastFailureAt)}
              </td>
              <td class="row-actions">
                <button class="button small primary" onClick={() => void act('replay', letter)}>
                  Replay
                </button>
                <button class="button small" onClick={() => void act('discard', letter)}>
                  Discard
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Every dead letter, grouped by queue and reason, to replay or discard one at a time, a group, or a selection. */
export function DeadLettersPage() {
  const page = useResource(() => api<DeadLetterPage>(`/console/dead-letters?limit=${PAGE}`), 'all');
  useLiveEvents((event) => (event.type === 'dead-letters' || event.type === 'resync') && page.refresh());
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const letters = page.data?.deadLetters ?? [];
  const present = new Set(letters.map((letter) => letter.messageId));
  const chosen = letters.filter((letter) => selected.has(letter.messageId));
  const select = (messageIds: string[], on: boolean) =>
    setSelected((previous) => {
      const next = new Set([...previous].filter((id) => present.has(id)));
      for (const id of messageIds) on ? next.add(id) : next.delete(id);
      return next;
    });
  const done = () => {
    setSelected(new Set());
    page.refresh();
  };

  const groups = new Map<string, DeadLetter[]>();
  for (const letter of letters) {
    const key = `${letter.queue}\u0000${letter.reason ?? 'unknown'}`;
    groups.set(key, [...(groups.get(key) ?? []), letter]);
  }
  const waiting = Object.entries(page.data?.depths ?? {}).filter(([, depth]) => depth > 0);

  return (
    <div class="page">
      <div class="page-head">
        <div>
          <h1>Dead letters</h1>
          <p class="muted">Messages that could not be handled wait in their queue’s <span class="mono">.dlq</span> until a person replays or discards them.</p>
        </div>
      </div>
      <div class="depths">
        {waiting.length === 0 && page.data && <span class="chip good">Every dead-letter queue is empty</span>}
        {waiting.map(([queue, depth]) => (
          <span class="chip bad" key={queue}>
            <span class="mono">{queue}</span> <strong>{depth}</strong>
          </span>
        ))}
      </div>
      {chosen.length > 0 && (
        <div class="bulk-bar">
          <span>{count(idsOf(chosen).length)} selected</span>
          <button class="button primary" onClick={async () => (await handle('replay', chosen)) && done()}>
            Replay selected
          </button>
          <button class="button" onClick={async () => (await handle('discard', chosen)) && done()}>
            Discard selected
          </button>
          <button class="button ghost" onClick={() => setSelected(new Set())}>
            Clear selection
          </button>
        </div>
      )}
      {page.error && <p class="form-error">{page.error}</p>}
      {page.data && letters.length === 0 && (
        <section class="card">
          <Empty>No dead letters. Nothing needs a person here.</Empty>
        </section>
      )}
      {[...groups.values()].map((group) => (
        <div class="group" key={`${group[0].queue}-${group[0].reason}`} data-queue={group[0].queue} data-reason={group[0].reason ?? ''}>
          <Section
            title={group[0].queue}
            aside={
              <>
                <span class="tag bad">{group[0].reason ?? 'unknown reason'}</span>
                <span class="muted small">{count(group.length)}</span>
                <button class="button small primary" onClick={async () => (await handle('replay', group)) && done()}>
                  Replay all
                </button>
                <button class="button small" onClick={async () => (await handle('discard', group)) && done()}>
                  Discard all
                </button>
              </>
            }
          >
            <DeadLetterRows letters={group} onDone={done} showOrder selected={selected} onSelect={select} />
          </Section>
        </div>
      ))}
      {page.data?.nextCursor && <p class="muted small">The first {PAGE} are shown; more wait behind them (handle these first, or use the console API’s pages).</p>}
    </div>
  );
}
