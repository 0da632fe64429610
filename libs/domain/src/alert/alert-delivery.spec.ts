import type { AlertMessageItem } from '@agentmeter/contracts';
import { backoffDelayMs, httpVerdict, renderGroupedMessage, retryAfterMs, smtpVerdict } from './alert-delivery';

describe('backoffDelayMs', () => {
  const policy = { baseMs: 1000, maxMs: 60_000 };
  it.each([
    [1, 0, 500],
    [1, 1, 1000],
    [2, 0, 1000],
    [3, 0.5, 3000],
    [10, 0, 30_000],
    [10, 1, 60_000],
    [100, 1, 60_000],
  ])('after %i failed attempts with random %d waits %d ms', (attempts, random, expected) => {
    expect(backoffDelayMs(attempts, policy, () => random)).toBe(expected);
  });

  it('never waits less than half of the step nor more than the step', () => {
    for (let attempt = 1; attempt < 12; attempt++) {
      const step = Math.min(60_000, 1000 * 2 ** (attempt - 1));
      const delay = backoffDelayMs(attempt, policy, Math.random);
      expect(delay).toBeGreaterThanOrEqual(step / 2);
      expect(delay).toBeLessThanOrEqual(step);
    }
  });
});

describe('retryAfterMs', () => {
  const now = new Date('2026-11-25T12:00:00Z');
  it.each<[string | null, number | null]>([
    [null, null],
    ['', null],
    ['2', 2000],
    [' 30 ', 30_000],
    ['0', 0],
    ['Wed, 25 Nov 2026 12:00:05 GMT', 5000],
    ['Wed, 25 Nov 2026 11:00:00 GMT', 0],
    ['soon', null],
    ['999999', 3_600_000],
  ])('%p -> %p', (header, expected) => {
    expect(retryAfterMs(header, now)).toBe(expected);
  });
});

describe('verdicts', () => {
  it.each([
    [200, 'sent'],
    [204, 'sent'],
    [301, 'permanent'],
    [400, 'permanent'],
    [403, 'permanent'],
    [404, 'permanent'],
    [410, 'permanent'],
    [408, 'retry'],
    [429, 'retry'],
    [500, 'retry'],
    [503, 'retry'],
  ])('HTTP %i is %s', (status, verdict) => {
    expect(httpVerdict(status)).toBe(verdict);
  });

  it.each([
    [{ responseCode: 550, code: 'EENVELOPE' }, 'permanent'],
    [{ responseCode: 554, code: 'EMESSAGE' }, 'permanent'],
    [{ responseCode: 451, code: 'EENVELOPE' }, 'retry'],
    [{ code: 'ECONNECTION' }, 'retry'],
    [{ code: 'ETIMEDOUT' }, 'retry'],
    [{ code: 'EENVELOPE' }, 'permanent'],
  ])('SMTP %o is %s', (error, verdict) => {
    expect(smtpVerdict(error)).toBe(verdict);
  });
});

describe('renderGroupedMessage', () => {
  const item = (over: Partial<AlertMessageItem>): AlertMessageItem => ({
    alert_key: 'k',
    rule: 'owner.cap_hit',
    kind: 'firing',
    severity: 'warning',
    scope: 'run:r1:cost',
    period: '',
    title: 'Cap reached',
    body: 'The cost cap of run r1 is reached.',
    at: '2026-11-25T12:00:00.000Z',
    ...over,
  });

  it('one alert reads as itself', () => {
    const message = renderGroupedMessage({
      deliveryId: 'd',
      tenantId: 'acme',
      rule: 'owner.cap_hit',
      audience: 'owner',
      items: [item({})],
    });
    expect(message.subject).toBe('[AgentMeter warning] Cap reached (tenant acme)');
    expect(message.text).toContain('The cost cap of run r1 is reached.');
  });

  it('a group counts, takes the worst severity and lists firing before resolved', () => {
    const message = renderGroupedMessage({
      deliveryId: 'd',
      tenantId: 'acme',
      rule: 'owner.cap_hit',
      audience: 'owner',
      items: [
        item({ kind: 'resolved', scope: 'run:r0:cost' }),
        item({ severity: 'critical' }),
        item({ scope: 'run:r2:cost' }),
      ],
    });
    expect(message.severity).toBe('critical');
    expect(message.subject).toBe('[AgentMeter critical] Cap reached: 2 firing, 1 resolved (tenant acme)');
    const lines = message.text.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[3]).toContain('RESOLVED');
    expect(message.alerts).toHaveLength(3);
  });

  it('the summary of a mute says how many alerts fired while muted, and when', () => {
    const message = renderGroupedMessage({
      deliveryId: 'd',
      tenantId: 'acme',
      rule: 'owner.cap_hit',
      audience: 'owner',
      items: [item({}), item({ scope: 'run:r2:cost', severity: 'critical' })],
      muted: { by: 'mute:m1', from: new Date('2026-11-25T10:00:00Z'), until: new Date('2026-11-25T14:00:00Z') },
    });
    expect(message.subject).toBe('[AgentMeter critical] 2 alerts while muted: Cap reached (tenant acme)');
    expect(message.text.split('\n')).toEqual([
      '2 alerts of rule owner.cap_hit fired for tenant acme while muted (mute:m1, 2026-11-25T10:00:00.000Z to 2026-11-25T14:00:00.000Z):',
      '- Cap reached [run:r1:cost]: The cost cap of run r1 is reached. (2026-11-25T12:00:00.000Z)',
      '- Cap reached [run:r2:cost]: The cost cap of run r1 is reached. (2026-11-25T12:00:00.000Z)',
    ]);
    expect(message.muted_by).toBe('mute:m1');
  });
});
