// Small pieces every view uses: status badges, ids, the reason dialog and notices.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { label, short, tone } from './format';

export function Badge({ status, title }: { status: string; title?: string }) {
  return (
    <span class={`badge tone-${tone(status)}`} title={title} data-status={status}>
      {label(status)}
    </span>
  );
}

/** An id shown short, whole on hover, copied on click. */
export function Id({ value, full = false }: { value: string | null | undefined; full?: boolean }) {
  if (!value) return <span class="muted">—</span>;
  return (
    <button type="button" class="id" title={`${value} (click to copy)`} onClick={() => void navigator.clipboard?.writeText(value).then(() => notify('Copied to the clipboard'))}>
      {full ? value : short(value)}
    </button>
  );
}

export function Section({ title, aside, children }: { title: string; aside?: ComponentChildren; children: ComponentChildren }) {
  return (
    <section class="card">
      <header class="card-head">
        <h2>{title}</h2>
        {aside && <div class="card-aside">{aside}</div>}
      </header>
      {children}
    </section>
  );
}

export const Empty = ({ children }: { children: ComponentChildren }) => <p class="empty">{children}</p>;

// ---- The reason dialog: every action asks why, and the answer goes into the saga's history.

interface Question {
  title: string;
  body?: ComponentChildren;
  confirm: string;
  danger?: boolean;
  required: boolean;
}
let ask: (question: Question & { answer: (reason: string | null) => void }) => void = () => undefined;

/** Asks for a reason: the text (maybe empty where optional), or null when cancelled. */
export const askReason = (question: Question) => new Promise<string | null>((answer) => ask({ ...question, answer }));

export function ReasonDialog() {
  const [question, setQuestion] = useState<(Question & { answer: (reason: string | null) => void }) | null>(null);
  const [reason, setReason] = useState('');
  const dialog = useRef<HTMLDialogElement>(null);
  ask = (next) => {
    setReason('');
    setQuestion(next);
  };
  useEffect(() => {
    if (question && !dialog.current?.open) dialog.current?.showModal();
  }, [question]);
  const close = (value: string | null) => {
    question?.answer(value);
    setQuestion(null);
    dialog.current?.close();
  };
  return (
    <dialog ref={dialog} class="dialog" onCancel={(event) => (event.preventDefault(), close(null))}>
      {question && (
        <form
          onSubmit={(event) => {
            event.preventDefault();
            if (!question.required || reason.trim()) close(reason.trim());
          }}
        >
          <h2>{question.title}</h2>
          {question.body && <div class="dialog-body">{question.body}</div>}
          <label class="field">
            <span>Reason{question.required ? '' : ' (optional)'}</span>
            <textarea name="reason" rows={3} maxLength={500} required={question.required} value={reason} onInput={(event) => setReason(event.currentTarget.value)} autofocus />
          </label>
          <p class="hint">Recorded in the saga’s history with your identity.</p>
          <div class="dialog-actions">
            <button type="button" class="button" onClick={() => close(null)}>
              Cancel
            </button>
            <button type="submit" class={`button ${question.danger ? 'danger' : 'primary'}`}>
              {question.confirm}
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}

// ---- Notices: what an action did, or why it failed.

interface Notice {
  id: number;
  text: string;
  bad: boolean;
}
let push: (notice: Notice) => void = () => undefined;
let noticeIds = 0;
export const notify = (text: string, bad = false) => push({ id: ++noticeIds, text, bad });

export function Notices() {
  const [notices, setNotices] = useState<Notice[]>([]);
  push = (notice) => {
    setNotices((shown) => [...shown.slice(-3), notice]);
    window.setTimeout(() => setNotices((shown) => shown.filter((other) => other.id !== notice.id)), notice.bad ? 8_000 : 4_000);
  };
  return (
    <div class="notices" role="status" aria-live="polite">
      {notices.map((notice) => (
        <div key={notice.id} class={`notice ${notice.bad ? 'bad' : ''}`}>
          {notice.text}
        </div>
      ))}
    </div>
  );
}
