import { mayIssueKeyFor, PERMISSIONS, ROLES, scopeFor, seesObservability, seesTokens, type Role } from './query-access';

describe('scopeFor', () => {
  it.each([
    [['bu'], 'runs.read', 'own'],
    [['support'], 'runs.read', 'all'],
    [['support'], 'analytics.costs', null],
    [['bu'], 'runs.events', null],
    [['owner'], 'caps.raise', 'own'],
    [['finance'], 'caps.raise', 'own'],
    [['op'], 'caps.raise', null],
    [['auditor'], 'runs.control', null],
    [['admin'], 'tenant.settings', 'all'],
    [['owner', 'support'], 'runs.read', 'all'],
    [['bu', 'op'], 'config.read', 'own'],
    [[], 'runs.read', null],
  ] as Array<[Role[], keyof typeof PERMISSIONS, string | null]>)('%j %s -> %s', (roles, permission, scope) => {
    expect(scopeFor(roles, permission)).toBe(scope);
  });

  it('gives Admin every permission and Auditor no action', () => {
    for (const permission of Object.keys(PERMISSIONS) as Array<keyof typeof PERMISSIONS>) {
      expect(scopeFor(['admin'], permission)).not.toBeNull();
    }
    for (const action of [
      'tenant.pause',
      'caps.raise',
      'runs.control',
      'alerts.mute',
      'apikeys.manage',
      'tenant.settings',
    ] as const) {
      expect(scopeFor(['auditor'], action)).toBeNull();
      expect(scopeFor(['bu'], action)).toBeNull();
      expect(scopeFor(['support'], action)).toBeNull();
    }
  });
});

describe('property rules', () => {
  it.each(ROLES.map((role) => [role, role === 'op' || role === 'admin']))(
    '%s sees trace links: %s',
    (role, expected) => {
      expect(seesObservability([role])).toBe(expected);
    },
  );

  it.each([
    [['owner'], true, true],
    [['owner'], false, false],
    [['owner', 'bu'], false, true],
    [['bu'], false, true],
    [['finance'], false, true],
  ] as Array<[Role[], boolean, boolean]>)(
    '%j with owner_sees_tokens=%s sees tokens: %s',
    (roles, setting, expected) => {
      expect(seesTokens(roles, setting)).toBe(expected);
    },
  );

  it.each([
    [['admin'], 'admin', true],
    [['owner'], 'finance', true],
    [['owner'], 'admin', false],
    [['owner'], 'support', false],
    [['op'], 'bu', false],
  ] as Array<[Role[], Role, boolean]>)('%j may issue a %s key: %s', (issuer, role, expected) => {
    expect(mayIssueKeyFor(issuer, role)).toBe(expected);
  });
});
