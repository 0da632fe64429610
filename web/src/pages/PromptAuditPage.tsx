import '../prompt-audit/prompt-audit.css';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useParams } from 'react-router';
import { api, data } from '../api/client';
import { usePermission, useWhoAmI } from '../api/hooks';
import { keys } from '../api/keys';
import { LastSyncedBadge } from '../components/LastSyncedBadge';
import { ErrorState, Loading, NotAllowed, Panel } from '../components/states';
import { PromptAuditSetting } from '../prompt-audit/PromptAuditSetting';
import { PromptTexts } from '../prompt-audit/PromptTexts';

const PAGE_SIZE = 20;

/**
 * /tenants/{id}/prompt-audit (docs/console.md "Prompt audit"), Admins and the tenant's Owners: the setting
 * with its switch, and the redacted prompt texts, newest first, a page at a time (the API's cursor).
 */
export default function PromptAuditPage() {
  const { tenantId = '' } = useParams();
  const whoami = useWhoAmI();
  const mayRead = usePermission('prompt_audit.read');
  // The cursors of the pages before this one (newest page first), to page back without refetching them all.
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors[cursors.length - 1];
  const page = useQuery({
    queryKey: keys.tenants.promptAudit(tenantId, cursor),
    queryFn: () =>
      data(
        api.GET('/tenants/{tenant_id}/prompt-audit', {
          params: { path: { tenant_id: tenantId }, query: { limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) } },
        }),
      ),
    enabled: mayRead,
  });

  const header = (
    <header className="page-header">
      <div>
        <p className="eyebrow">Tenant</p>
        <h1>Prompt audit</h1>
        <p className="muted">
          <Link to={`/tenants/${encodeURIComponent(tenantId)}`}>{tenantId}</Link> · redacted prompt and completion texts
          of LLM calls, newest first · times in UTC
        </p>
      </div>
      {page.data ? (
        <div className="page-header-side">
          <LastSyncedBadge syncedAt={new Date(page.dataUpdatedAt).toISOString()} live={false} />
        </div>
      ) : null}
    </header>
  );
  if (whoami.isPending) return <Loading label="Loading…" />;
  if (!mayRead) {
    return (
      <div className="page">
        {header}
        <NotAllowed what="read the prompt audit" />
      </div>
    );
  }
  return (
    <div className="page">
      {header}
      {page.isPending ? (
        <Loading label="Loading the prompt audit…" />
      ) : page.isError ? (
        <ErrorState error={page.error} what="the prompt audit" />
      ) : (
        <>
          <Panel title="Setting" id="prompt-audit-setting">
            <PromptAuditSetting setting={page.data} />
          </Panel>
          <Panel title="Prompt texts" id="prompt-texts">
            <PromptTexts page={page.data} enabled={page.data.enabled} />
            {cursors.length > 0 || page.data.next_cursor ? (
              <nav className="pager" aria-label="Prompt text pages">
                <button
                  type="button"
                  className="button-secondary"
                  disabled={cursors.length === 0}
                  onClick={() => setCursors((c) => c.slice(0, -1))}
                >
                  Newer
                </button>
                <span className="muted">Page {cursors.length + 1}</span>
                <button
                  type="button"
                  className="button-secondary"
                  disabled={!page.data.next_cursor}
                  onClick={() => page.data.next_cursor && setCursors((c) => [...c, page.data.next_cursor!])}
                >
                  Older
                </button>
              </nav>
            ) : null}
          </Panel>
        </>
      )}
    </div>
  );
}
