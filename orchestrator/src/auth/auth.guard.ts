import { type CanActivate, type ExecutionContext, ForbiddenException, Injectable, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { PUBLIC_ROUTE } from '@sagaflow/shared';
import type { Request } from 'express';
import { Authenticator } from './authenticator.js';
import { type Principal, REQUIRED_ROLE, type Role } from './principal.js';
import { requireSameOrigin, SAFE_METHODS, Sessions } from './session.js';

/**
 * Every HTTP route needs a caller with the `client` role, or the role the route asks for; public ones none.
 * The caller is named by a bearer token, or else by the dashboard's session cookie.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly authenticator: Authenticator,
    private readonly sessions: Sessions,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const request = context.switchToHttp().getRequest();
    try {
      request.principal = await this.identify(request);
    } catch (error) {
      if (error instanceof UnauthorizedException) context.switchToHttp().getResponse().setHeader('WWW-Authenticate', 'Bearer realm="sagaflow"');
      throw error;
    }
    const required = this.reflector.getAllAndOverride<Role>(REQUIRED_ROLE, targets) ?? 'client';
    if (required === 'operator' && request.principal.role !== 'operator') throw new ForbiddenException('this needs the operator role');
    return true;
  }

  private async identify(request: Request): Promise<Principal> {
    const session = request.headers.authorization === undefined ? await this.sessions.principalOf(request) : undefined;
    if (!session) return this.authenticator.authenticate(request.headers.authorization);
    if (!SAFE_METHODS.has(request.method)) requireSameOrigin(request);
    return session;
  }
}
