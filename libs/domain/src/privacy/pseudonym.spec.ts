import { EXAMPLE_EVENTS, type AgentEvent } from '@agentmeter/contracts';
import { PseudonymKey, Redactor } from './pseudonym';

const KEY = 'test-pseudonym-key-0123456789abcdef';

describe('PseudonymKey', () => {
  const key = new PseudonymKey(KEY);

  it('is a keyed, stable, 16-hex pseudonym', () => {
    const a = key.pseudonym('jane@example.com', 'user');
    expect(a).toMatch(/^user:hmac:[0-9a-f]{16}$/);
    expect(key.pseudonym('jane@example.com', 'user')).toBe(a);
    expect(key.pseudonym('bob@example.com', 'user')).not.toBe(a);
    expect(new PseudonymKey(KEY.replace('0', '1')).pseudonym('jane@example.com', 'user')).not.toBe(a);
  });

  it('compares e-mail addresses case-insensitively and phone numbers by digits', () => {
    expect(key.pseudonym(' Jane@Example.COM', 'user')).toBe(key.pseudonym('jane@example.com', 'user'));
    expect(key.pseudonym('+1 (415) 555-0100', 'user')).toBe(key.pseudonym('+14155550100', 'user'));
  });

  it('refuses a short key', () => {
    expect(() => new PseudonymKey('short')).toThrow('at least 32');
  });
});

describe('Redactor', () => {
  const redactor = Redactor.withKey(KEY);

  it('returns every example event unchanged, as the same object', () => {
    for (const event of EXAMPLE_EVENTS) expect(redactor.event(event as AgentEvent)).toEqual({ event, found: [] });
  });

  it('pseudonymises the envelope and the identifiers of an event, and redacts its text', () => {
    const event = {
      specversion: '1.0',
      id: 'evt-jane@example.com',
      source: 'mailto:+1 415 555 0100',
      type: 'llm_call',
      time: '2026-11-25T10:00:00Z',
      subject: 'ops@example.org',
      data: { tenant_id: 'ops@example.org', run_id: 'r1', user_id: 'Jane@example.com', error: 'card 4111111111111111' },
    };
    const { event: out, found } = redactor.event(event);
    expect(out.id).toMatch(/^id:hmac:[0-9a-f]{16}$/);
    expect(out.source).toMatch(/^source:hmac:[0-9a-f]{16}$/);
    expect(out.subject).toBe(out.data.tenant_id);
    expect(out.data).toEqual({
      tenant_id: out.subject,
      run_id: 'r1',
      user_id: redactor.identifier('jane@example.com', 'user'),
      error: 'card [REDACTED:payment_card]',
    });
    expect(found).toEqual(expect.arrayContaining(['email', 'phone', 'payment_card']));
    expect(redactor.event(out)).toEqual({ event: out, found: [] }); // idempotent
  });

  it('reads a path-like identifier segment by segment', () => {
    expect(redactor.identifier('otlp/+1 415 555 0100', 'source')).toMatch(/^source:hmac:/);
    expect(redactor.identifier('otlp/4111111111111111', 'source')).toMatch(/^source:hmac:/);
    expect(redactor.identifier('otlp/planner-agent', 'source')).toBe('otlp/planner-agent');
  });

  it('keeps identifiers that hold nothing sensitive', () => {
    expect(redactor.identifier('user-42', 'user')).toBe('user-42');
    expect(redactor.value({ user_id: 'u-1', actor: 'ops-bot' }).value).toEqual({ user_id: 'u-1', actor: 'ops-bot' });
  });
});
