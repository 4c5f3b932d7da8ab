import type { ComponentChildren } from 'preact';
import { api, type ConsoleSaga, type DeadLetterPage, type HistoryEvent, type Order, type Session, type Step } from './api';
import { DeadLetterRows } from './dead-letters';
import { ago, between, dateTime, duration, label, money, time, tone } from './format';
import { useLiveEvents, useResource } from './live';
import { askReason, Badge, Empty, Id, notify, Section } from './widgets';

const FINAL = ['COMPLETED', 'COMPENSATED'];

export function SagaPage({ orderId, session }: { orderId: string; session: Session }) {
  const order = useResource(() => api<Order>(`/orders/${encodeURIComponent(orderId)}`), orderId);
  const row = useResource(async () => (await api<ConsoleSaga[]>(`/console/sagas?orderId=${encodeURIComponent(orderId)}&limit=1`))[0] ?? null, orderId);
  const letters = useResource(async () => (await api<DeadLetterPage>('/console/dead-letters?limit=500')).deadLetters.filter((letter) => letter.orderId === orderId), orderId);
  const refresh = () => (order.refresh(), row.refresh());
  useLiveEvents((event) => {
    if (event.type === 'dead-letters' || event.type === 'resync') letters.refresh();
    if (event.type === 'resync' || (event.type === 'sagas' && (event.data.more || event.data.sagas.some((saga) => saga.orderId === orderId)))) refresh();
  });

  if (order.error && !order.data) return <div class="page"><Back /><p class="form-error">{order.error}</p></div>;
  if (!order.data) return <div class="page"><Back /><Empty>Loading…</Empty></div>;
  const { saga } = order.data;
  const history = saga.history ?? [];
  const awaiting = row.data?.awaiting ?? null;

  const act = async (action: 'retry' | 'compensate') => {
    const reason = await askReason(
      action === 'retry'
        ? { title: 'Retry this saga', body: retryMeaning(saga.status), confirm: 'Retry', required: false }
        : { title: 'Compensate this saga', body: 'Every step done so far is undone in reverse order and the order is cancelled. Only possible before the payment is taken.', confirm: 'Compensate', danger: true, required: true },
    );
    if (reason === null) return;
    try {
      await api(`/console/sagas/${saga.id}/${action}`, { method: 'POST', body: reason ? { reason } : {} });
      notify(action === 'retry' ? 'Retried: the step runs again' : 'Compensation started');
      refresh();
    } catch (error) {
      notify((error as Error).message, true);
    }
  };

  return (
    <div class="page">
      <Back />
      <div class="page-head">
        <div>
          <h1 class="title-row">
            <span>Order</span> <span class="mono">{order.data.orderId}</span> <Badge status={saga.status} />
          </h1>
          <p class="muted">
            {order.data.customerId} · {money(order.data.total, order.data.currency)} · {order.data.items.map((item) => `${item.quantity} × ${item.sku}`).join(', ')}
          </p>
        </div>
        {!FINAL.includes(saga.status) && (
          <div class="page-actions">
            <button class="button" onClick={() => void act('retry')}>
              Retry…
            </button>
            {saga.status === 'RUNNING' && (
              <button class="button danger-outline" onClick={() => void act('compensate')}>
                Compensate…
              </button>
            )}
          </div>
        )}
      </div>

      <div class="facts">
        <Fact name="Started">{dateTime(order.data.createdAt)}</Fact>
        <Fact name="Last change">{ago(order.data.updatedAt)}</Fact>
        <Fact name="Duration">{FINAL.includes(saga.status) || saga.status.endsWith('FAILED') ? between(order.data.createdAt, order.data.updatedAt) : `${between(order.data.createdAt, new Date().toISOString())} so far`}</Fact>
        <Fact name="Order status">{label(order.data.status)}</Fact>
        {order.data.failureReason && <Fact name="Failure">{order.data.failureReason}</Fact>}
      </div>

      {saga.setAside && (
        <div class="alert bad">
          <strong>Command set aside:</strong> {saga.setAside.commandType} ({saga.setAside.messageId}) can never be published as it is: {saga.setAside.reason}. Retry or compensate.
        </div>
      )}

      {(letters.data?.length ?? 0) > 0 && (
        <Section title="Dead letters of this saga" aside={<span class="muted small">waiting in their .dlq for a person</span>}>
          <DeadLetterRows letters={letters.data!} onDone={letters.refresh} showOrder={false} />
        </Section>
      )}

      <div class="columns">
        <Section title="Steps">
          <Timeline steps={saga.steps} history={history} awaitingStep={awaiting?.action === 'invoke' ? awaiting.step : null} />
        </Section>
        <div class="stack">
          <Compensations steps={saga.steps} history={history} awaitingStep={awaiting?.action === 'compensate' ? awaiting.step : null} />
          <Section title="Identifiers">
            <dl class="ids">
              <dt>Saga</dt>
              <dd><Id value={saga.id} full /></dd>
              <dt>Order</dt>
              <dd><Id value={order.data.orderId} full /></dd>
              <dt>Correlation</dt>
              <dd><Id value={row.data?.correlationId} full /></dd>
              <dt>Awaited command</dt>
              <dd>
                {awaiting ? (
                  <>
                    <span class="mono">{awaiting.commandType}</span> <Id value={awaiting.messageId} /> <span class="muted small">{awaiting.sendAt ? `due ${time(awaiting.sendAt)}` : `sent ${time(awaiting.sentAt)}, waiting ${between(awaiting.sentAt, new Date().toISOString())}`}{awaiting.sends > 1 ? ` (${awaiting.sends} sends)` : ''}</span>
                  </>
                ) : (
                  <span class="muted">none</span>
                )}
              </dd>
              <dt>Trace</dt>
              <dd>
                <Trace traceId={row.data?.traceId ?? null} template={session.tracingUiUrl} />
              </dd>
            </dl>
          </Section>
        </div>
      </div>

      <Section title="History" aside={<span class="muted small">{history.length} events</span>}>
        <History events={history} />
      </Section>
    </div>
  );
}

const Back = () => (
  <a class="back" href="#/sagas">
    ← Sagas
  </a>
);

const Fact = ({ name, children }: { name: string; children: ComponentChildren }) => (
  <div class="fact">
    <div class="fact-name">{name}</div>
    <div class="fact-value">{children}</div>
  </div>
);

function retryMeaning(status: string): string {
  if (status === 'FAILED') return 'The failed step runs again (after the payment: it is never undone).';
  if (status === 'COMPENSATION_FAILED') return 'The undo that failed runs again.';
  return 'The command the saga waits for is sent again now (same message id: the participant answers it once).';
}

/** The trace id, linked to the tracing UI when TRACING_UI_URL names one. */
function Trace({ traceId, template }: { traceId: string | null; template: string | null }) {
  if (!traceId) return <span class="muted" data-trace="none">No trace id recorded for this saga (tracing off)</span>;
  if (!template) return <span class="mono" data-trace={traceId} title="Set TRACING_UI_URL to link it to your tracing UI">{traceId}</span>;
  return (
    <a class="mono" data-trace={traceId} href={template.replace('{traceId}', encodeURIComponent(traceId))} target="_blank" rel="noreferrer noopener">
      {traceId} ↗
    </a>
  );
}

/** The forward steps in order, with attempts, failures and durations; the ones still pending are what remains. */
function Timeline({ steps, history, awaitingStep }: { steps: Step[]; history: HistoryEvent[]; awaitingStep: string | null }) {
  const undoOnly = afterCompensationSteps(steps, history);
  return (
    <ol class="timeline">
      {steps
        .filter((step) => !undoOnly.has(step.name) || step.status !== 'PENDING')
        .map((step) => {
          const remaining = step.status === 'PENDING';
          return (
            <li key={step.name} class={`tl-item ${remaining ? 'remaining' : ''}`} data-step={step.name} data-status={step.status}>
              <span class={`tl-dot tone-${tone(step.status)}`} />
              <div class="tl-body">
                <div class="tl-head">
                  <strong>{step.name}</strong>
                  {remaining ? <span class="tag">remaining</span> : <Badge status={step.status} />}
                  {awaitingStep === step.name && <span class="tag busy">awaiting reply</span>}
                  {step.mayHaveActed && <span class="tag warn" title="It failed without an answer: it may have acted, so it is undone too">may have acted</span>}
                </div>
                {!remaining && (
                  <div class="tl-meta">
                    {step.attempts > 0 && <span>{step.attempts === 1 ? '1 attempt' : `${step.attempts} attempts`}</span>}
                    <Waits event={history.find((event) => event.kind === 'reply-applied' && event.step === step.name)} />
                    {step.startedAt && <span>started {time(step.startedAt)}</span>}
                    {step.finishedAt && <span>took {between(step.startedAt, step.finishedAt)}</span>}
                    {step.startedAt && !step.finishedAt && <span>running for {between(step.startedAt, new Date().toISOString())}</span>}
                  </div>
                )}
                {step.failures.length > 0 && (
                  <ul class="failures">
                    {step.failures.map((failure) => (
                      <li>
                        <time>{time(failure.at)}</time> {failure.error}
                      </li>
                    ))}
                  </ul>
                )}
                {step.error && <div class="step-error">{step.error}</div>}
              </div>
            </li>
          );
        })}
    </ol>
  );
}

/** The undos, in the order they ran: the command, its sends, refusals and how long it took. */
function Compensations({ steps, history, awaitingStep }: { steps: Step[]; history: HistoryEvent[]; awaitingStep: string | null }) {
  const undone = steps
    .map((step) => {
      const sends = history.filter((event) => event.kind === 'command-sent' && event.step === step.name && event.outcome === 'compensate');
      const refusals = history.filter((event) => event.kind === 'reply-applied' && event.step === step.name && event.outcome === 'failed' && sends.some((send) => send.messageType && event.messageType?.startsWith(send.messageType)));
      return { step, sends, refusals, startedAt: sends[0]?.at ?? null };
    })
    .filter(({ step, sends }) => sends.length > 0 || ['COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED'].includes(step.status))
    .sort((a, b) => (a.startedAt ?? '9').localeCompare(b.startedAt ?? '9'));
  if (undone.length === 0) return null;
  return (
    <Section title="Compensations">
      <ol class="timeline">
        {undone.map(({ step, sends, refusals, startedAt }) => (
          <li key={step.name} class="tl-item" data-undo={step.name}>
            <span class={`tl-dot tone-${tone(step.status)}`} />
            <div class="tl-body">
              <div class="tl-head">
                <strong>undo {step.name}</strong>
                <Badge status={step.status} />
                {awaitingStep === step.name && <span class="tag busy">awaiting reply</span>}
              </div>
              <div class="tl-meta">
                {sends[0]?.messageType && <span class="mono">{sends[0].messageType}</span>}
                <span>sent {sends.length}×</span>
                {startedAt && <span>started {time(startedAt)}</span>}
                {step.compensatedAt && <span>took {between(startedAt, step.compensatedAt)}</span>}
              </div>
              {refusals.length > 0 && (
                <ul class="failures">
                  {refusals.map((refusal) => (
                    <li>
                      <time>{time(refusal.at)}</time> {refusal.detail ?? 'refused'}
                    </li>
                  ))}
                </ul>
              )}
            </div>
          </li>
        ))}
      </ol>
    </Section>
  );
}

/** Steps that only run after a compensation (the cancellation notice): no "remaining" step of a saga going forward. */
function afterCompensationSteps(steps: Step[], history: HistoryEvent[]): Set<string> {
  const last = steps[steps.length - 1];
  const forward = history.some((event) => event.kind === 'command-sent' && event.step === last?.name && event.outcome === 'invoke');
  return new Set(last && last.name.startsWith('notify-cancellation') && !forward ? [last.name] : []);
}

/** How long the step's command waited in its queue, and how long the participant worked on it, as its reply told. */
function Waits({ event }: { event: HistoryEvent | undefined }) {
  if (!event || (event.queuedMs === null && event.workMs === null)) return null;
  return (
    <>
      {event.queuedMs !== null && <span title="From the send to the participant's first start">queued {duration(event.queuedMs)}</span>}
      {event.workMs !== null && <span title="The participant's work, its retries included">worked {duration(event.workMs)}</span>}
    </>
  );
}

function History({ events }: { events: HistoryEvent[] }) {
  if (events.length === 0) return <Empty>No history kept (it is deleted after the retention period).</Empty>;
  return (
    <div class="scroll">
      <table class="table compact history">
        <thead>
          <tr>
            <th>Time</th>
            <th>Event</th>
            <th>Step</th>
            <th>Message</th>
            <th>Outcome</th>
            <th>Detail</th>
            <th>Actor</th>
          </tr>
        </thead>
        <tbody>
          {events.map((event, index) => (
            <tr key={index} data-kind={event.kind} class={event.kind === 'operator-action' ? 'operator' : ''}>
              <td class="nowrap mono small" title={dateTime(event.at)}>
                {time(event.at)}
              </td>
              <td class="nowrap">{event.kind.replaceAll('-', ' ')}</td>
              <td class="nowrap">{event.step ?? ''}</td>
              <td class="nowrap">
                {event.messageType && <span class="mono small">{event.messageType} </span>}
                {event.messageId && <Id value={event.messageId} />}
              </td>
              <td class="nowrap">{event.outcome ?? ''}</td>
              <td class="detail">
                {[event.detail, event.queuedMs !== null && `queued ${duration(event.queuedMs)}`, event.workMs !== null && `worked ${duration(event.workMs)}`].filter(Boolean).join(' · ')}
              </td>
              <td class="nowrap small">{event.actor ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

