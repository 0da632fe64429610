/**
 * The query-key factory: every cached answer has its key here, so a stream, a mutation or a test writes
 * into the same cache entry a page reads. Keys start with the credential's subject via the session (the
 * cache is cleared on sign-out).
 */
export const keys = {
  whoami: () => ['whoami'] as const,
  settings: () => ['console-settings'] as const,
  runs: {
    all: () => ['runs'] as const,
    list: (filters: Record<string, string | undefined>) => ['runs', 'list', filters] as const,
    metrics: (runId: string) => ['runs', runId, 'metrics'] as const,
    events: (runId: string) => ['runs', runId, 'events'] as const,
  },
  admin: { overview: (filters: Record<string, string | undefined>) => ['admin', 'overview', filters] as const },
  prices: {
    all: () => ['prices'] as const,
    list: (filters: Record<string, string | undefined>) => ['prices', 'list', filters] as const,
    reprices: () => ['prices', 'reprices'] as const,
  },
  tenants: {
    overview: (tenantId: string) => ['tenants', tenantId, 'overview'] as const,
    caps: (tenantId: string) => ['tenants', tenantId, 'caps'] as const,
    promptAudit: (tenantId: string, cursor?: string) => ['tenants', tenantId, 'prompt-audit', cursor ?? null] as const,
    promptAuditAll: (tenantId: string) => ['tenants', tenantId, 'prompt-audit'] as const,
    promptAuditSummary: (tenantId: string) => ['tenants', tenantId, 'prompt-audit', 'summary'] as const,
  },
  banners: () => ['banners'] as const,
  audit: (filters: Record<string, string | undefined>) => ['audit', filters] as const,
  projects: {
    overview: (projectId: string, tenantId?: string) => ['projects', projectId, 'overview', tenantId ?? null] as const,
  },
  analytics: (kind: string, filters: Record<string, string | undefined>) => ['analytics', kind, filters] as const,
};
