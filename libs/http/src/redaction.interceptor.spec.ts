import type { CallHandler, ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { of } from 'rxjs';
import { Redactor } from '@agentmeter/domain';
import { KeepBodyFields, RedactionInterceptor } from './redaction.interceptor';

const redactor = Redactor.withKey('unit-test-pseudonym-key-0123456789abcdef');
const card = ['4111', '1111', '1111', '1111'].join(' ');

class Handlers {
  plain(): void {}
  @KeepBodyFields('target')
  contact(): void {}
}

function contextOf(handler: keyof Handlers, request: { body?: unknown; params?: Record<string, string> }) {
  return {
    getType: () => 'http',
    getHandler: () => Handlers.prototype[handler],
    getClass: () => Handlers,
    switchToHttp: () => ({ getRequest: () => request }),
  } as unknown as ExecutionContext;
}

describe('RedactionInterceptor', () => {
  const interceptor = new RedactionInterceptor(redactor, new Reflector());
  const next: CallHandler = { handle: () => of('handled') };

  it('redacts the body and pseudonymises actors and identifiers before the handler', () => {
    const request = {
      body: { actor: 'jane@example.com', reason: `refund to card ${card}`, tenant_id: 'acme' },
      params: { run_id: '+1 415 555 0100' },
    };
    interceptor.intercept(contextOf('plain', request), next);
    expect(request.body).toEqual({
      actor: redactor.identifier('jane@example.com', 'user'),
      reason: 'refund to card [REDACTED:payment_card]',
      tenant_id: 'acme',
    });
    expect(request.params.run_id).toMatch(/^id:hmac:[0-9a-f]{16}$/);
  });

  it('keeps the fields a route declares, and redacts the others', () => {
    const request = { body: { target: 'owner@example.com', reason: 'mail owner@example.com' } };
    interceptor.intercept(contextOf('contact', request), next);
    expect(request.body).toEqual({ target: 'owner@example.com', reason: 'mail [REDACTED:email]' });
  });

  it('leaves raw bodies (OTLP protobuf) and clean bodies as they are', () => {
    const raw = Buffer.from('raw');
    const buffered = { body: raw };
    interceptor.intercept(contextOf('plain', buffered), next);
    expect(buffered.body).toBe(raw);
    const clean = { reason: 'quota reached', actor: 'ops-bot' };
    const request = { body: clean };
    interceptor.intercept(contextOf('plain', request), next);
    expect(request.body).toBe(clean);
  });
});
