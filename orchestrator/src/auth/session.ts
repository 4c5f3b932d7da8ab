import { ForbiddenException, UnauthorizedException } from '@nestjs/common';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { Request, Response } from 'express';
import { EncryptJWT, jwtDecrypt } from 'jose';
import { hkdfSync, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Authenticator } from './authenticator.js';
import type { Principal } from './principal.js';

export const SESSION_COOKIE = 'sagaflow_session';
const AUDIENCE = 'sagaflow-dashboard';
/** What a session holds: who signed in, and whether with an API key (which must still be configured). */
const Claims = z.object({ sub: z.string().min(1), role: z.enum(['client', 'operator']), key: z.boolean(), exp: z.number() });

/**
 * The dashboard's sessions: the signed-in principal as an encrypted JWT (dir + A256GCM, with jose) in an
 * HttpOnly, SameSite=Strict cookie. Nothing is kept server-side, so every instance sharing UI_SESSION_SECRET
 * reads it; signing out removes the cookie, and a session made with an API key ends when the key is removed.
 */
export class Sessions {
  private readonly key: Uint8Array;

  constructor(
    private readonly authenticator: Authenticator,
    secret: string | undefined,
    private readonly ttlMs: number,
  ) {
    this.key = new Uint8Array(hkdfSync('sha256', secret ?? randomBytes(32), 'sagaflow', 'dashboard session', 32));
  }

  /** Sets the session cookie for `principal`; it lasts the session's time, never past the credential's own expiry. */
  async start(principal: Principal, request: Request, response: Response): Promise<number> {
    const expiresAt = Math.min(Date.now() + this.ttlMs, principal.expiresAt ?? Infinity);
    const token = await new EncryptJWT({ role: principal.role, key: this.authenticator.isKey(principal.id) })
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
      .setSubject(principal.id)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt / 1000))
      .encrypt(this.key);
    response.append('Set-Cookie', cookie(request, token, new Date(expiresAt)));
    return expiresAt;
  }

  end(request: Request, response: Response): void {
    response.append('Set-Cookie', cookie(request, '', new Date(0)));
  }

  /** The principal of the request's session, undefined without a session cookie, or 401 for one that is no longer good. */
  async principalOf(request: Request): Promise<Principal | undefined> {
    const token = request.headers.cookie ? parseCookie(request.headers.cookie)[SESSION_COOKIE] : undefined;
    if (!token) return undefined;
    let claims: z.infer<typeof Claims>;
    try {
      const { payload } = await jwtDecrypt(token, this.key, { audience: AUDIENCE, keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
      claims = Claims.parse(payload);
    } catch {
      throw new UnauthorizedException('the session has ended or is not valid: sign in again');
    }
    if (claims.key && !this.authenticator.isKey(claims.sub)) throw new UnauthorizedException('the API key of this session is no longer configured: sign in again');
    return { role: claims.role, id: claims.sub, expiresAt: claims.exp * 1000 };
  }
}

/** Behind a proxy that terminates TLS the request arrives as http: its X-Forwarded-Proto says https (it only adds Secure). */
const isHttps = (request: Request) => request.secure || request.headers['x-forwarded-proto']?.toString().split(',')[0].trim() === 'https';

const cookie = (request: Request, value: string, expires: Date) =>
  stringifySetCookie({ name: SESSION_COOKIE, value, httpOnly: true, sameSite: 'strict', secure: isHttps(request), path: '/', expires });

/**
 * CSRF guard for requests a cookie authenticates (a browser adds cookies by itself, a bearer header it never
 * does): besides SameSite=Strict, a state-changing one must say it comes from our own origin.
 */
export function requireSameOrigin(request: Request): void {
  const origin = request.headers.origin;
  const site = request.headers['sec-fetch-site'];
  let sameHost = false;
  try {
    sameHost = origin !== undefined && new URL(origin).host === request.headers.host;
  } catch {
    // Not a URL ("null", garbage): not our origin.
  }
  if (!sameHost || (site !== undefined && site !== 'same-origin')) throw new ForbiddenException(`this request must come from the dashboard's own pages: its Origin header names ${origin ?? 'none'}`);
}

/** Methods that change nothing, which a cookie may authenticate from anywhere SameSite lets it come. */
export const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
