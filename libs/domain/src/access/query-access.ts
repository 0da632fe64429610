/**
 * Who may do what through the query API (docs/security.md "Matrix"). docs/security.md shows the same
 * matrix as a table; the e2e test checks every cell against the running service with its own copy of it.
 *
 * A permission maps each role to a scope: 'all' (every tenant) or 'own' (the credential's tenant only).
 * A role that is absent is refused (403). The tenant always comes from the credential: a request naming
 * another tenant's run, project or tenant id, when the scope is 'own', answers 404 like a missing one.
 */

export const ROLES = ['admin', 'owner', 'op', 'bu', 'auditor', 'support', 'finance'] as const;
export type Role = (typeof ROLES)[number];

export type TenantScope = 'all' | 'own';

type Grant = Partial<Record<Role, TenantScope>>;

const READ_RUNS: Grant = {
  admin: 'all',
  owner: 'own',
  op: 'own',
  bu: 'own',
  auditor: 'own',
  support: 'all',
  finance: 'own',
};

export const PERMISSIONS = {
  /** GET /runs, /runs/{id}/metrics, /runs/{id}/stream */
  'runs.read': READ_RUNS,
  /** GET /runs/{id}/events: the raw timeline (payloads carry errors and artifact paths). */
  'runs.events': { admin: 'all', owner: 'own', op: 'own', auditor: 'own', support: 'all' },
  /** GET /config: Grafana and Tempo base URLs and templates (docs/query.md "Links"). */
  'config.read': { admin: 'all', op: 'own' },
  /** GET /admin/overview */
  'admin.overview': { admin: 'all' },
  /** GET /tenants/{id}/overview */
  'tenant.overview': { admin: 'all', owner: 'own', op: 'own', bu: 'own', auditor: 'own', finance: 'own' },
  /** GET /projects/{id}/overview */
  'project.overview': { admin: 'all', owner: 'own', op: 'own', bu: 'own', auditor: 'own' },
  /** GET /api/v1/analytics/costs and /usage */
  'analytics.costs': { admin: 'all', owner: 'own', op: 'own', auditor: 'own', finance: 'own' },
  /** GET /api/v1/analytics/metrics (the phase metrics, docs/query.md "Endpoints") */
  'analytics.metrics': { admin: 'all', owner: 'own', op: 'own', bu: 'own', auditor: 'own', finance: 'own' },
  /** GET /audit */
  'audit.read': { admin: 'all', owner: 'own', auditor: 'own', finance: 'own' },
  /** GET /alerts/banners: every role sees the banners of its own tenant. */
  'banners.read': {
    admin: 'own',
    owner: 'own',
    op: 'own',
    bu: 'own',
    auditor: 'own',
    support: 'own',
    finance: 'own',
  },
  /** POST /tenants/{id}/pause and /unpause */
  'tenant.pause': { admin: 'all' },
  /** POST /tenants/{id}/caps (raise, permanent or 72 h) */
  'caps.raise': { admin: 'all', owner: 'own', finance: 'own' },
  /** POST /runs/{id}/reopen-phase and /rerun-last-step */
  'runs.control': { admin: 'all', owner: 'own', op: 'own' },
  /** POST /alerts/mutes, DELETE /alerts/mutes/{id} */
  'alerts.mute': { admin: 'all', owner: 'own' },
  /** POST/GET/DELETE /api-keys */
  'apikeys.manage': { admin: 'all', owner: 'own' },
  /** PATCH /tenants/{id}/settings (owner_sees_tokens) */
  'tenant.settings': { admin: 'all' },
  /** PUT /tenants/{id}/phase-targets (GET is tenant.overview) */
  'phase_targets.manage': { admin: 'all', owner: 'own' },
  /** POST /alerts/feedback: the people an alert reaches rate it (GET alert precision is analytics.metrics) */
  'alerts.feedback': { admin: 'all', owner: 'own', op: 'own', finance: 'own' },
  /** GET/POST /admin/prices, POST /admin/prices/{id}/retire, GET/POST /admin/reprices */
  'prices.manage': { admin: 'all' },
  /** GET /tenants/{id}/prompt-audit: the redacted prompt texts and the setting (docs/events.md "Prompt audit") */
  'prompt_audit.read': { admin: 'all', owner: 'own' },
  /** PUT /tenants/{id}/prompt-audit: turn the prompt audit on or off, and its retention in days */
  'prompt_audit.manage': { admin: 'all', owner: 'own' },
} as const satisfies Record<string, Grant>;

export type Permission = keyof typeof PERMISSIONS;

/** The widest scope any of the roles has for a permission, or null when none may use it. */
export function scopeFor(roles: Iterable<Role>, permission: Permission): TenantScope | null {
  const grant: Grant = PERMISSIONS[permission];
  let best: TenantScope | null = null;
  for (const role of roles) {
    const scope = grant[role];
    if (scope === 'all') return 'all';
    if (scope === 'own') best = 'own';
  }
  return best;
}

/** Trace ids and Grafana/Tempo links: OP and Admin only (docs/security.md "Properties"; absent for BU and Auditor). */
export function seesObservability(roles: Iterable<Role>): boolean {
  for (const role of roles) if (role === 'op' || role === 'admin') return true;
  return false;
}

/**
 * Raw token counts: every role that reads them sees them, except that an Owner (and nothing more) sees only
 * $ and time when the tenant's `owner_sees_tokens` setting is off (docs/security.md "Properties").
 */
export function seesTokens(roles: Iterable<Role>, ownerSeesTokens: boolean): boolean {
  let owner = false;
  for (const role of roles) {
    if (role === 'owner') owner = true;
    else return true;
  }
  return owner ? ownerSeesTokens : true;
}

/** Roles an API key may be issued with by a caller: Owners cannot mint Admin or Support keys. */
export function mayIssueKeyFor(issuerRoles: Iterable<Role>, keyRole: Role): boolean {
  const roles = [...issuerRoles];
  if (roles.includes('admin')) return true;
  if (roles.includes('owner')) return keyRole !== 'admin' && keyRole !== 'support';
  return false;
}
