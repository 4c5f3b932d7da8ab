import { ForbiddenException, UnauthorizedException } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import type { Principal, Role } from './principal.js';

export interface AuthSettings {
  apiKeys?: { role: Role; key: string }[];
  jwt?: { jwksUrl: string; issuer: string; audience: string; rolesClaim: string; customerClaim?: string };
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Turns a bearer token into a principal: an API key from API_KEYS (compared in constant time, as digests of
 * equal length), else a JWT verified against the issuer's JWKS (keys fetched and cached by jose).
 */
export class Authenticator {
  private readonly keys: { role: Role; digest: Buffer; id: string }[];
  private readonly jwks?: ReturnType<typeof createRemoteJWKSet>;

  constructor(private readonly settings: AuthSettings) {
    this.keys = (settings.apiKeys ?? []).map(({ role, key }) => ({ role, digest: digest(key), id: `api-key:${role}:${digest(key).toString('hex').slice(0, 8)}` }));
    if (settings.jwt) this.jwks = createRemoteJWKSet(new URL(settings.jwt.jwksUrl));
  }

  /** The caller, or 401 (no or bad credentials) or 403 (a valid token that carries no Sagaflow role). */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    const token = /^Bearer ([\x21-\x7e]{1,8192})$/i.exec(authorization ?? '')?.[1];
    if (!token) throw new UnauthorizedException('a bearer token is required (Authorization: Bearer <API key or JWT>)');
    const presented = digest(token);
    // Every key is compared, so the time taken says nothing about which matched.
    let found: (typeof this.keys)[number] | undefined;
    for (const key of this.keys) if (timingSafeEqual(key.digest, presented)) found ??= key;
    if (found) return { role: found.role, id: found.id };
    if (this.jwks && token.split('.').length === 3) return this.fromJwt(await this.verify(token));
    throw new UnauthorizedException('the token is not valid');
  }

  private async verify(token: string): Promise<JWTPayload> {
    const { issuer, audience } = this.settings.jwt!;
    try {
      return (await jwtVerify(token, this.jwks!, { issuer, audience })).payload;
    } catch (error) {
      throw new UnauthorizedException(`the token is not valid: ${(error as Error).message}`);
    }
  }

  private fromJwt(payload: JWTPayload): Principal {
    const { rolesClaim, customerClaim } = this.settings.jwt!;
    const claimed = claim(payload, rolesClaim);
    const roles = Array.isArray(claimed) ? claimed.map(String) : typeof claimed === 'string' ? claimed.split(' ') : [];
    const role: Role | undefined = roles.includes('operator') ? 'operator' : roles.includes('client') ? 'client' : undefined;
    if (!role) throw new ForbiddenException(`the token's ${rolesClaim} claim holds neither client nor operator`);
    const id = payload.sub ? String(payload.sub) : 'jwt:(no subject)';
    const expiresAt = payload.exp === undefined ? undefined : payload.exp * 1000;
    if (role === 'operator' || !customerClaim) return { role, id, expiresAt };
    const customerId = claim(payload, customerClaim);
    if (typeof customerId !== 'string' || customerId === '') throw new ForbiddenException(`the token has no ${customerClaim} claim naming its customer`);
    return { role, id, customerId, expiresAt };
  }

  /** Whether `id` names an API key still configured (a session made with a key ends when the key goes). */
  isKey(id: string): boolean {
    return this.keys.some((key) => key.id === id);
  }
}

/** A claim by dot path (`realm_access.roles`). */
function claim(payload: JWTPayload, path: string): unknown {
  return path.split('.').reduce<unknown>((value, key) => (value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined), payload);
}
