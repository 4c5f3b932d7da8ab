// How times, durations, money and states read on the page.

export function duration(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1_000)} s`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
  return `${Math.floor(ms / 86_400_000)} d ${Math.round((ms % 86_400_000) / 3_600_000)} h`;
}

export const between = (from: string | null, to: string | null) => (from && to ? duration(Date.parse(to) - Date.parse(from)) : null);

export function ago(at: string | null, now = Date.now()): string {
  if (!at) return '—';
  const ms = now - Date.parse(at);
  return ms < 5_000 ? 'just now' : `${duration(ms).replace(/ \d+ (s|min|h)$/, '')} ago`;
}

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3, hour12: false });
const day = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });

export const time = (at: string | null) => (at ? clock.format(new Date(at)) : '—');
export const dateTime = (at: string | null) => (at ? day.format(new Date(at)) : '—');

export const money = (amount: number | null, currency: string | null) =>
  amount === null || currency === null ? '—' : new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(amount / 100);

/** The colour family of a saga's or a step's state. */
export function tone(status: string): 'good' | 'busy' | 'warn' | 'bad' | 'calm' | 'idle' {
  switch (status) {
    case 'COMPLETED':
    case 'SUCCEEDED':
    case 'CONFIRMED':
      return 'good';
    case 'RUNNING':
      return 'busy';
    case 'COMPENSATING':
      return 'warn';
    case 'FAILED':
    case 'COMPENSATION_FAILED':
      return 'bad';
    case 'COMPENSATED':
    case 'CANCELLED':
      return 'calm';
    default:
      return 'idle';
  }
}

export const label = (status: string) => status.toLowerCase().replaceAll('_', ' ');

/** The first characters of a UUID, enough to tell sagas apart on one screen. */
export const short = (id: string) => id.slice(0, 8) + '…' + id.slice(-4);
