import { FINAL_SAGA_STATUSES, type FaultPlan, type NotificationRecord, type OrderLine, type PaymentRecord, type SagaStatus, type StockItem } from '../contracts/index.js';
import { eventually } from './eventually.js';

export interface PlaceOrderRequest {
  customerId: string;
  items: OrderLine[];
  paymentMethod: string;
  /** A fault plan (needs FAULT_INJECTION=true): per command type, e.g. `{ 'payment.charge': { error: 2 } }`. */
  faults?: FaultPlan;
}

export interface OrderResponse {
  orderId: string;
  status: 'PENDING' | 'CONFIRMED' | 'CANCELLED';
  total: number | null;
  currency: string | null;
  failureReason: string | null;
  items: OrderLine[];
  saga: {
    id: string;
    status: SagaStatus;
    steps: {
      name: string;
      status: string;
      attempts: number;
      failures: { at: string; error: string }[];
      startedAt: string | null;
      finishedAt: string | null;
      compensatedAt: string | null;
      error: string | null;
    }[];
    /** The awaited command, set aside because it can never be published as it is. */
    setAside: { step: string; commandType: string; messageId: string; reason: string; at: string } | null;
    history: {
      kind: string;
      step: string | null;
      messageId: string | null;
      messageType: string | null;
      outcome: string | null;
      detail: string | null;
      queuedMs: number | null;
      workMs: number | null;
    }[];
  };
}

/** A dead letter as the console lists it. */
export interface DeadLetterRow {
  messageId: string;
  queue: string;
  originalQueue: string;
  type: string | null;
  sagaId: string | null;
  orderId?: string | null;
  reason: string | null;
  error: string | null;
}

/** The HTTP API as a test (or a person's script) uses it, with a bearer token (an API key or a JWT) if given. */
export class SagaflowClient {
  constructor(
    readonly baseUrl: string,
    readonly token?: string,
  ) {}

  /** fetch() on a path of the API, with this client's token unless the request sets its own Authorization. */
  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.token && !headers.has('authorization')) headers.set('authorization', `Bearer ${this.token}`);
    return fetch(this.baseUrl + path, { ...init, headers });
  }

  /** The same API as another caller (another token). */
  as(token: string | undefined): SagaflowClient {
    return new SagaflowClient(this.baseUrl, token);
  }

  async placeOrder(
    order: PlaceOrderRequest,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: any; location: string | null; retryAfter: string | null }> {
    const response = await this.fetch('/orders', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(order),
    });
    return { status: response.status, body: await response.json(), location: response.headers.get('location'), retryAfter: response.headers.get('retry-after') };
  }

  /**
   * Places an order that must be accepted; returns its id. Like any good client it waits as Retry-After says
   * when Sagaflow sheds load (429) or waits for a dependency (503), and tries again, for up to `patienceMs`.
   */
  async submit(order: PlaceOrderRequest, patienceMs = 60_000): Promise<string> {
    for (const deadline = Date.now() + patienceMs; ; ) {
      const { status, body, retryAfter } = await this.placeOrder(order);
      if (status === 202) return body.orderId;
      if ((status !== 429 && status !== 503) || Date.now() > deadline) throw new Error(`order refused with ${status}: ${JSON.stringify(body)}`);
      await new Promise((resolve) => setTimeout(resolve, Number(retryAfter ?? 1) * 1_000));
    }
  }

  async order(orderId: string): Promise<OrderResponse | undefined> {
    const response = await this.fetch(`/orders/${orderId}`);
    if (response.status === 404) return undefined;
    if (!response.ok) throw new Error(`GET /orders/${orderId}: ${response.status}`);
    return (await response.json()) as OrderResponse;
  }

  /** Waits until the order's saga has ended (any final status) and returns the order. */
  awaitFinal(orderId: string, timeoutMs = 30_000): Promise<OrderResponse> {
    return eventually(
      async () => {
        const order = await this.order(orderId);
        return order && FINAL_SAGA_STATUSES.includes(order.saga.status) ? order : undefined;
      },
      { timeoutMs, intervalMs: 100, what: `order ${orderId} to reach a final state` },
    );
  }

  async stock(sku: string): Promise<StockItem> {
    return this.get(`/inventory/${encodeURIComponent(sku)}`);
  }

  async catalog(): Promise<StockItem[]> {
    return this.get('/inventory');
  }

  async payments(orderId: string): Promise<PaymentRecord[]> {
    return this.get(`/payments?orderId=${orderId}`);
  }

  async notifications(orderId: string): Promise<NotificationRecord[]> {
    return this.get(`/notifications?orderId=${orderId}`);
  }

  /** Every dead letter in the console, page by page (`query` narrows it, e.g. `queue=inventory.commands.dlq`). */
  async deadLetters<T = Record<string, unknown>>(query = ''): Promise<T[]> {
    const letters: T[] = [];
    for (let cursor: string | null = ''; cursor !== null; ) {
      const page: { deadLetters: T[]; nextCursor: string | null } = await this.get(`/console/dead-letters?limit=500${query ? `&${query}` : ''}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      letters.push(...page.deadLetters);
      cursor = page.nextCursor;
    }
    return letters;
  }

  /** The first dead letter in the console that `matches`, once there is one. */
  awaitDeadLetter(matches: (letter: DeadLetterRow) => boolean, timeoutMs = 30_000): Promise<DeadLetterRow> {
    return eventually(async () => (await this.deadLetters<DeadLetterRow>()).find(matches), { timeoutMs, what: 'a matching dead letter in the console' });
  }

  async get<T>(path: string): Promise<T> {
    const response = await this.fetch(path);
    if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }
}
