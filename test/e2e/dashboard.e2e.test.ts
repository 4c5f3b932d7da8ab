// The saga dashboard (/ui) in a real browser, Debian's Chromium driven by playwright-core, against the real
// processes: an operator signs in, finds an order whose payment was dead-lettered, replays it with a click and
// watches the saga complete without reloading. Its sessions are checked over HTTP too: cookie flags, CSRF,
// non-operators refused. Screenshots go to test-artifacts/ui/.
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import type { SagaflowClient } from '../../shared/src/testkit/index.js';
import { startSuiteSystem, type SuiteSystem } from './suite-system.js';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/ui/', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TRACING_UI = 'http://tracing.invalid';
// As root, and with no network but the loopback: without the background-networking flags Chromium hangs on start.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

let suite: SuiteSystem;
let browser: Browser;
let api: SagaflowClient;
let base: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (as .ci/run does), or set CHROMIUM_PATH`);
  mkdirSync(ARTIFACTS, { recursive: true });
  [suite, browser] = await Promise.all([
    // A deadline longer than the charge's five attempts (about 21 s of back-off), so that the dead letter waits for
    // a person; traces kept (printed to the logs) so that the saga's trace id is linked to a tracing UI.
    startSuiteSystem('dashboard', {
      FAULT_INJECTION: 'true',
      SAGA_DEADLINE_MS: '180000',
      OTEL_TRACES_EXPORTER: 'console',
      TRACING_UI_URL: `${TRACING_UI}/trace/{traceId}`,
    }),
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS }),
  ]);
  api = suite.isolated.client;
  base = suite.isolated.system.url('orchestrator');
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await suite?.dispose();
});

const signIn = (token: string, headers: Record<string, string> = { origin: base }) =>
  fetch(`${base}/ui/session`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ token }) });
const sessionCookie = (response: Response) => response.headers.getSetCookie().find((cookie) => cookie.startsWith('sagaflow_session='))!;

describe('sessions', () => {
  test('only operators get one: an HttpOnly, SameSite=Strict cookie, Secure behind https, that works instead of a bearer token', async () => {
    expect((await signIn(suite.isolated.apiKeys.client)).status).toBe(403);
    expect((await signIn('not-a-key-of-ours-0123456789')).status).toBe(401);
    expect((await signIn(suite.isolated.apiKeys.operator, {})).status).toBe(403); // no Origin: not from our page
    expect((await signIn(suite.isolated.apiKeys.operator, { origin: 'https://evil.example' })).status).toBe(403);

    const signedIn = await signIn(suite.isolated.apiKeys.operator);
    expect(signedIn.status).toBe(200);
    expect(await signedIn.json()).toMatchObject({ actor: expect.stringMatching(/^api-key:operator:/), role: 'operator' });
    const cookie = sessionCookie(signedIn);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).not.toMatch(/; Secure/);
    expect(sessionCookie(await signIn(suite.isolated.apiKeys.operator, { origin: base, 'x-forwarded-proto': 'https' }))).toMatch(/; Secure/);

    const session = { cookie: cookie.split(';')[0] };
    const asSession = (path: string, init: RequestInit = {}) => fetch(base + path, { ...init, headers: { ...session, ...init.headers } });
    expect((await asSession('/console/sagas?limit=1')).status).toBe(200);
    expect((await asSession('/ui/session')).status).toBe(200);
    // A state-changing request a cookie authenticates must come from our own origin (CSRF).
    const replay = (headers: Record<string, string>) =>
      asSession('/console/dead-letters/replay', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ messageIds: ['none'] }) });
    expect((await replay({})).status).toBe(403);
    expect((await replay({ origin: 'https://evil.example' })).status).toBe(403);
    expect((await replay({ origin: base, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await replay({ origin: base, 'sec-fetch-site': 'same-origin' })).status).toBe(201);
    // A forged or tampered cookie is no session.
    expect((await fetch(`${base}/console/sagas`, { headers: { cookie: `${session.cookie.slice(0, -4)}AAAA` } })).status).toBe(401);

    const signedOut = await fetch(`${base}/ui/session`, { method: 'DELETE', headers: { ...session, origin: base } });
    expect(signedOut.status).toBe(204);
    expect(sessionCookie(signedOut)).toMatch(/^sagaflow_session=;.*Expires=Thu, 01 Jan 1970/);
  });
});

describe('in the browser', () => {
  test('sign in, find the order whose payment was dead-lettered, replay it with a click, see the saga complete live', async () => {
    // The charge fails its five attempts (its whole retry budget), so it is dead-lettered; after the replay it succeeds.
    const orderId = await api.submit({ customerId: 'ada-lovelace', items: [{ sku: 'SKU-TEE', quantity: 1 }, { sku: 'SKU-MUG', quantity: 2 }], paymentMethod: 'tok_visa', faults: { 'payment.charge': { error: 5 } } });
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    try {
      await page.goto(`${base}/ui/`);
      // A client's key is refused; the operator's is taken.
      await page.fill('input[name=token]', suite.isolated.apiKeys.client);
      await page.click('button[type=submit]');
      await page.getByRole('alert').getByText('the dashboard is for operators').waitFor();
      await page.screenshot({ path: `${ARTIFACTS}1-sign-in-refused.png` });
      await page.fill('input[name=token]', suite.isolated.apiKeys.operator);
      await page.click('button[type=submit]');
      await page.locator('.topbar .actor').getByText('api-key:operator:').waitFor();
      await page.locator('.live.live').waitFor(); // the event stream is open
      const [cookie] = (await context.cookies()).filter((candidate) => candidate.name === 'sagaflow_session');
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
      // Anything the page does from here on must happen without a reload: this mark would be gone.
      await page.evaluate(() => Object.assign(globalThis, { stillTheSamePage: true }));

      // Find the order by its id.
      await page.fill('input[name=orderId]', orderId);
      await page.getByRole('button', { name: 'Search' }).click();
      const found = page.locator(`table[data-search*="orderId=${orderId}"]`); // the list of this search, not the one before
      const row = found.locator(`tr[data-order="${orderId}"]`);
      await row.waitFor();
      expect(await found.locator('tbody tr').count()).toBe(1);
      await page.screenshot({ path: `${ARTIFACTS}2-search.png` });
      await row.click();
      await page.locator('h1').getByText(orderId).waitFor();

      // Its dead letter shows up by itself once the charge has used up its attempts (pushed by the live updates).
      const letter = page.locator('.card', { hasText: 'Dead letters of this saga' }).locator('tr[data-message]');
      await letter.waitFor({ timeout: 60_000 });
      expect(await letter.textContent()).toMatch(/payment\.charge.*charge-payment.*5.*injected transient error/);
      expect(await page.locator('[data-step="confirm-order"] .tag').textContent()).toBe('remaining');
      await page.screenshot({ path: `${ARTIFACTS}3-saga-dead-lettered.png`, fullPage: true });

      // The dead-letter view groups it by queue and reason.
      await page.getByRole('link', { name: /Dead letters/ }).click();
      const group = page.locator('.group[data-queue="payment.commands.dlq"][data-reason="retries-exhausted"]');
      await group.locator(`tr[data-message]`).filter({ hasText: 'charge-payment' }).waitFor();
      await page.screenshot({ path: `${ARTIFACTS}4-dead-letters.png` });
      await page.goBack();

      // Replay it with a click, giving the reason the dialog asks for.
      await letter.getByRole('button', { name: 'Replay' }).click();
      const dialog = page.locator('dialog[open]');
      await dialog.locator('textarea[name=reason]').fill('payment gateway is back');
      await dialog.getByRole('button', { name: 'Replay' }).click();

      // The saga completes on the page by itself.
      await page.locator('h1 [data-status="COMPLETED"]').waitFor({ timeout: 30_000 });
      await page.locator('tr[data-kind="saga-ended"]').waitFor();
      const replayed = page.locator('tr[data-kind="operator-action"]');
      expect(await replayed.textContent()).toMatch(/replay.*payment gateway is back.*api-key:operator:/);
      expect(await page.locator('[data-step="charge-payment"] .tl-meta').textContent()).toMatch(/6 attempts/);
      expect(await page.locator('[data-trace]').getAttribute('href')).toMatch(new RegExp(`^${TRACING_UI}/trace/[0-9a-f]{32}$`));
      expect(await page.locator('.card', { hasText: 'Dead letters of this saga' }).count()).toBe(0);
      expect(await page.evaluate(() => (globalThis as { stillTheSamePage?: boolean }).stillTheSamePage)).toBe(true);
      await page.screenshot({ path: `${ARTIFACTS}5-saga-completed.png`, fullPage: true });

      // What the page showed is what happened.
      const order = await api.awaitFinal(orderId);
      expect(order.status).toBe('CONFIRMED');
      expect(order.saga.history).toContainEqual(expect.objectContaining({ kind: 'operator-action', outcome: 'replay', detail: expect.stringContaining('payment gateway is back') }));
      expect(await api.payments(orderId)).toHaveLength(1);

      await page.getByRole('link', { name: 'Sagas', exact: true }).click();
      await page.locator(`tr[data-order="${orderId}"] [data-status="COMPLETED"]`).waitFor();
      await page.screenshot({ path: `${ARTIFACTS}6-sagas.png` });
      expect(problems).toEqual([]);
    } catch (error) {
      await page.screenshot({ path: `${ARTIFACTS}failure.png`, fullPage: true }).catch(() => undefined);
      throw error;
    } finally {
      await context.close();
    }
  }, 120_000);
});

