import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { DisabledError, UnauthenticatedError } from './problem';
import { Public, ServiceTokenGuard } from './service-token.guard';

class Routes {
  guarded(): void {}
  @Public()
  open(): void {}
}

function context(handler: keyof Routes, authorization?: string): ExecutionContext {
  return {
    getHandler: () => Routes.prototype[handler],
    getClass: () => Routes,
    switchToHttp: () => ({ getRequest: () => ({ headers: authorization ? { authorization } : {} }) }),
  } as unknown as ExecutionContext;
}

describe('ServiceTokenGuard', () => {
  const guard = new ServiceTokenGuard(new Reflector(), { setting: 'X_API_TOKEN', value: 's3cret-token' });

  it('lets the configured bearer token through, and @Public() routes without one', () => {
    expect(guard.canActivate(context('guarded', 'Bearer s3cret-token'))).toBe(true);
    expect(guard.canActivate(context('guarded', 'bearer   s3cret-token'))).toBe(true);
    expect(guard.canActivate(context('open'))).toBe(true);
  });

  it('refuses a missing, malformed or wrong token with 401s that do not say how close it was', () => {
    expect(() => guard.canActivate(context('guarded'))).toThrow(new UnauthenticatedError('missing bearer token'));
    expect(() => guard.canActivate(context('guarded', 'Basic s3cret-token'))).toThrow(UnauthenticatedError);
    expect(() => guard.canActivate(context('guarded', 'Bearer s3cret-toke'))).toThrow(
      new UnauthenticatedError('invalid token'),
    );
  });

  it('answers 503 naming the setting when no token is configured, except on public routes', () => {
    const unset = new ServiceTokenGuard(new Reflector(), { setting: 'X_API_TOKEN', value: undefined });
    expect(() => unset.canActivate(context('guarded', 'Bearer anything'))).toThrow(DisabledError);
    expect(() => unset.canActivate(context('guarded', 'Bearer anything'))).toThrow(/X_API_TOKEN/);
    expect(unset.canActivate(context('open'))).toBe(true);
  });
});
