import './prompt-audit.css';
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { api, data } from '../api/client';
import { keys } from '../api/keys';
import { ErrorState, Loading, Panel } from '../components/states';
import { count, dateTime } from '../format';

/**
 * The Tenant Overview's prompt audit panel, for Admins and the tenant's Owners: on or off, the retention,
 * the newest stored text, and the way to the prompt audit page (the setting's switch and the texts).
 */
export function PromptAuditSummary({ tenantId }: { tenantId: string }) {
  const summary = useQuery({
    queryKey: keys.tenants.promptAuditSummary(tenantId),
    queryFn: () =>
      data(
        api.GET('/tenants/{tenant_id}/prompt-audit', {
          params: { path: { tenant_id: tenantId }, query: { limit: 1 } },
        }),
      ),
  });
  const to = `/tenants/${encodeURIComponent(tenantId)}/prompt-audit`;
  return (
    <Panel title="Prompt audit" id="prompt-audit">
      {summary.isPending ? (
        <Loading label="Loading the prompt audit setting…" />
      ) : summary.isError ? (
        <ErrorState error={summary.error} what="the prompt audit" />
      ) : (
        <>
          <p data-testid="prompt-audit-summary">
            <span className={`status ${summary.data.enabled ? 'status-succeeded' : 'status-off'}`}>
              {summary.data.enabled ? 'On' : 'Off'}
            </span>{' '}
            · texts kept for {count(summary.data.retention_days)} days
            {summary.data.items[0] ? (
              <span className="muted"> · newest {dateTime(summary.data.items[0].time)}</span>
            ) : (
              <span className="muted"> · no text stored</span>
            )}
          </p>
          <Link to={to}>Open the prompt audit</Link>
        </>
      )}
    </Panel>
  );
}
