import { ForbiddenException, UnauthorizedException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { Authenticator } from './authenticator.js';
import { requireSameOrigin, Sessions } from './session.js';

const KEY = 'operator-key-0123456789abcdef';

/** The Set-Cookie a session start writes, and a request that sends it back. */
async function signIn(sessions: Sessions, authenticator: Authenticator, request: Partial<Request> = {}) {
  const cookies: string[] = [];
  const response = { append: (_name: string, value: string) => cookies.push(value) } as unknown as Response;
  const principal = await authenticator.authenticate(`Bearer ${KEY}`);
  await sessions.start(principal, { headers: {}, secure: false, ...request } as Request, response);
  return { setCookie: cookies[0], request: { headers: { cookie: cookies[0].split(';')[0] } } as Request, principal };
}

describe('dashboard sessions', () => {
  const authenticator = new Authenticator({ apiKeys: [{ role: 'operator', key: KEY }] });

  test('a session names its principal again, in an HttpOnly, SameSite=Strict cookie that is Secure only over https', async () => {
    const sessions = new Sessions(authenticator, 's'.repeat(32), 60_000);
    const { setCookie, request, principal } = await signIn(sessions, authenticator);
    expect(setCookie).toMatch(/^sagaflow_session=[\w.-]+; Path=\/; Expires=.+; HttpOnly; SameSite=Strict$/);
    expect(await sessions.principalOf(request)).toMatchObject({ role: 'operator', id: principal.id });
    expect((await signIn(sessions, authenticator, { headers: { 'x-forwarded-proto': 'https' } })).setCookie).toMatch(/; Secure/);
    expect(await sessions.principalOf({ headers: {} } as Request)).toBeUndefined();
  });

  test('another secret, a tampered cookie, an expired session or a key no longer configured is 401', async () => {
    const sessions = new Sessions(authenticator, 's'.repeat(32), 60_000);
    const { request } = await signIn(sessions, authenticator);
    await expect(new Sessions(authenticator, 't'.repeat(32), 60_000).principalOf(request)).rejects.toThrow(UnauthorizedException);
    // One character of the ciphertext changed: A256GCM's tag no longer matches.
    const [name, header, key, iv, ciphertext, tag] = request.headers.cookie!.split(/[=.]/);
    const flipped = `${ciphertext[0] === 'A' ? 'B' : 'A'}${ciphertext.slice(1)}`;
    const tampered = { headers: { cookie: `${name}=${[header, key, iv, flipped, tag].join('.')}` } } as Request;
    await expect(sessions.principalOf(tampered)).rejects.toThrow(UnauthorizedException);
    const expired = await signIn(new Sessions(authenticator, 's'.repeat(32), -1_000), authenticator);
    await expect(sessions.principalOf(expired.request)).rejects.toThrow(UnauthorizedException);
    const rotated = new Authenticator({ apiKeys: [{ role: 'operator', key: 'another-key-0123456789abcdef' }] });
    await expect(new Sessions(rotated, 's'.repeat(32), 60_000).principalOf(request)).rejects.toThrow(/no longer configured/);
  });

  test('a state-changing request with a cookie must name this host as its Origin', () => {
    const request = (headers: Record<string, string>) => ({ headers: { host: 'ops.example:3000', ...headers } }) as unknown as Request;
    expect(() => requireSameOrigin(request({ origin: 'http://ops.example:3000' }))).not.toThrow();
    expect(() => requireSameOrigin(request({ origin: 'https://ops.example:3000', 'sec-fetch-site': 'same-origin' }))).not.toThrow();
    const refused: Record<string, string>[] = [{}, { origin: 'null' }, { origin: 'http://evil.example' }, { origin: 'http://ops.example:3000.evil.example' }, { origin: 'http://ops.example:3000', 'sec-fetch-site': 'same-site' }];
    for (const headers of refused) {
      expect(() => requireSameOrigin(request(headers))).toThrow(ForbiddenException);
    }
  });
});
