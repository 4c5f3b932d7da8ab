// The orchestrator's HTTP API as the dashboard reads it: same origin, authenticated by the session cookie.
// The shapes below are the fields the dashboard uses of GET /orders/:id, /console/* and /ui/session.

export type SagaStatus = 'RUNNING' | 'COMPENSATING' | 'COMPLETED' | 'COMPENSATED' | 'FAILED' | 'COMPENSATION_FAILED';
export const SAGA_STATUSES: SagaStatus[] = ['RUNNING', 'COMPENSATING', 'COMPLETED', 'COMPENSATED', 'FAILED', 'COMPENSATION_FAILED'];
export type StepStatus = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'COMPENSATING' | 'COMPENSATED' | 'COMPENSATION_FAILED' | 'SKIPPED';

export interface Step {
  name: string;
  status: StepStatus;
  attempts: number;
  failures: { at: string; error: string }[];
  startedAt: string | null;
  finishedAt: string | null;
  compensatedAt: string | null;
  error: string | null;
  mayHaveActed?: boolean;
}

export interface HistoryEvent {
  at: string;
  kind: string;
  step: string | null;
  messageId: string | null;
  messageType: string | null;
  outcome: string | null;
  detail: string | null;
  actor: string | null;
  /** On a reply: its command's wait in the queue, and the participant's work on it (ms). */
  queuedMs: number | null;
  workMs: number | null;
}

export interface Order {
  orderId: string;
  customerId: string;
  items: { sku: string; quantity: number }[];
  total: number | null;
  currency: string | null;
  status: string;
  failureReason: string | null;
  createdAt: string;
  updatedAt: string;
  saga: {
    id: string;
    status: SagaStatus;
    steps: Step[];
    setAside: { step: string; commandType: string; messageId: string; reason: string; at: string } | null;
    history?: HistoryEvent[];
  };
}

export interface Awaiting {
  step: string;
  action: 'invoke' | 'compensate';
  commandType: string;
  messageId: string;
  sends: number;
  sentAt: string;
  sendAt?: string;
}

/** A row of GET /console/sagas. */
export interface ConsoleSaga extends Order {
  correlationId: string;
  /** Null when tracing was off as the saga started. */
  traceId: string | null;
  awaiting: Awaiting | null;
}

export interface DeadLetter {
  messageId: string;
  queue: string;
  originalQueue: string;
  type: string | null;
  sagaId: string | null;
  orderId: string | null;
  step: string | null;
  sagaStatus: SagaStatus | null;
  reason: string | null;
  error: string | null;
  attempts: number | null;
  firstFailureAt: string | null;
  lastFailureAt: string | null;
  deadLetteredAt: string | null;
}

export interface DeadLetterPage {
  deadLetters: DeadLetter[];
  nextCursor: string | null;
  depths: Record<string, number>;
}

export interface Session {
  actor: string;
  role: string;
  expiresAt: string | null;
  /** `{traceId}` stands for the id; null when no tracing UI is configured. */
  tracingUiUrl: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

let onSignedOut: () => void = () => undefined;
/** Called whenever the API says the session is gone (401), so the page can show the sign-in form. */
export const whenSignedOut = (handler: () => void) => (onSignedOut = handler);

export async function api<T>(path: string, { method = 'GET', body }: { method?: string; body?: unknown } = {}): Promise<T> {
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return undefined as T;
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && !path.startsWith('/ui/session')) onSignedOut();
    throw new ApiError(response.status, explain(answer, response.status));
  }
  return answer as T;
}

/** An error answer as one sentence: the fields a 400 names, or the message. */
function explain(answer: unknown, status: number): string {
  const { message, errors } = (answer ?? {}) as { message?: unknown; errors?: { field: string; message: string }[] };
  if (Array.isArray(errors) && errors.length) return errors.map((error) => `${error.field}: ${error.message}`).join('; ');
  return typeof message === 'string' ? message : `the server answered ${status}`;
}

export const query = (params: Record<string, string | undefined>) => {
  const search = new URLSearchParams(Object.entries(params).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''));
  return search.size ? `?${search}` : '';
};
