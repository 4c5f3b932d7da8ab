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
    history: { kind: string; step: string | null; messageId: string | null; messageType: string | null; outcome: string | null; detail: string | null }[];
  };
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

  async placeOrder(order: PlaceOrderRequest, headers: Record<string, string> = {}): Promise<{ status: number; body: any; location: string | null }> {
    const response = await this.fetch('/orders', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(order),
    });
    return { status: response.status, body: await response.json(), location: response.headers.get('location') };
  }

  /** Places an order that must be accepted; returns its id. */
  async submit(order: PlaceOrderRequest): Promise<string> {
    const { status, body } = await this.placeOrder(order);
    if (status !== 202) throw new Error(`order refused with ${status}: ${JSON.stringify(body)}`);
    return body.orderId;
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

  async get<T>(path: string): Promise<T> {
    const response = await this.fetch(path);
    if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }
}
