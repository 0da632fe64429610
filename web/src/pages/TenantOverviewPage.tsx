import { useQuery } from '@tanstack/react-query';
import { useId, useState } from 'react';
import { Link, useParams } from 'react-router';
import { api, data } from '../api/client';
import { usePermission, useWhoAmI } from '../api/hooks';
import { keys } from '../api/keys';
import { ActionForm } from '../components/ActionForm';
import { CsvDownload } from '../components/CsvDownload';
import { Empty, ErrorState, Loading, Panel } from '../components/states';
import { count, dateTime, duration, percent, usd } from '../format';
import { CapsPanel } from '../overview/CapsPanel';
import { PromptAuditSummary } from '../prompt-audit/PromptAuditSummary';

/**
 * /tenants/{id} (docs/console.md "Tenant Overview"), the Owner's page: alert banners and muting, time to
 * gate per phase, recent ships, costs, proof completion rate, the tenant's caps with the budget left, and
 * (Admins and Owners) the prompt audit setting with the way to its page.
 */
export default function TenantOverviewPage() {
  const { tenantId = '' } = useParams();
  const overview = useQuery({
    queryKey: keys.tenants.overview(tenantId),
    queryFn: () => data(api.GET('/tenants/{tenant_id}/overview', { params: { path: { tenant_id: tenantId } } })),
  });
  const mayReadBanners = usePermission('banners.read');
  const mayReadPromptAudit = usePermission('prompt_audit.read');

  if (overview.isPending) return <Loading label="Loading the tenant…" />;
  if (overview.isError) {
    return (
      <div className="page">
        <h1>Tenant {tenantId}</h1>
        <ErrorState error={overview.error} what="this tenant" />
      </div>
    );
  }
  const t = overview.data;
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <p className="eyebrow">Tenant</p>
          <h1>{t.tenant_id}</h1>
          <p className="muted">
            Last {t.period.days} days: {t.period.from_day} to {t.period.to_day} (UTC days) · times in {t.time_zone}
          </p>
        </div>
        <div className="page-header-side">
          <CsvDownload
            path={`/tenants/${encodeURIComponent(tenantId)}/overview`}
            filename={`tenant-${tenantId}-overview.csv`}
            label="Export CSV"
          />
        </div>
      </header>
      {mayReadBanners ? <Banners tenantId={t.tenant_id} timeZone={t.time_zone} /> : null}
      <div className="grid">
        <Panel title="Costs" id="costs">
          <dl className="facts" data-testid="tenant-costs">
            <div>
              <dt>Today</dt>
              <dd>{usd(t.costs.today_usd)}</dd>
            </div>
            <div>
              <dt>Last 7 days</dt>
              <dd>{usd(t.costs.last_7_days_usd)}</dd>
            </div>
            <div>
              <dt>Last 30 days</dt>
              <dd>{usd(t.costs.last_30_days_usd)}</dd>
            </div>
          </dl>
          <h3>Runs</h3>
          <dl className="facts" data-testid="tenant-runs">
            <div>
              <dt>Total</dt>
              <dd>{count(t.runs.total)}</dd>
            </div>
            <div>
              <dt>Succeeded</dt>
              <dd>{count(t.runs.succeeded)}</dd>
            </div>
            <div>
              <dt>Failed</dt>
              <dd>{count(t.runs.failed)}</dd>
            </div>
            <div>
              <dt>Running</dt>
              <dd>{count(t.runs.running)}</dd>
            </div>
          </dl>
        </Panel>
        <Panel title="Proof completion" id="proofs">
          <p className="big-number" data-testid="proof-rate">
            {percent(t.proofs.completion_rate)}
          </p>
          {t.proofs.due === 0 ? <p className="muted">No proof was due in this period.</p> : null}
          <p className="muted">
            {count(t.proofs.passed)} passed of {count(t.proofs.due)} due ({count(t.proofs.completed)} completed)
          </p>
        </Panel>
      </div>
      <Panel title="Time to gate" id="time-to-gate">
        {t.time_to_gate.length === 0 ? (
          <Empty title="No phase reached its gate in this period." />
        ) : (
          <div className="table-wrap" role="region" aria-label="Time to gate" tabIndex={0}>
            <table data-testid="time-to-gate">
              <caption className="visually-hidden">Time from a phase's start to its gate, per phase</caption>
              <thead>
                <tr>
                  <th scope="col">Phase</th>
                  <th scope="col" className="num">
                    Runs
                  </th>
                  <th scope="col" className="num">
                    Average
                  </th>
                  <th scope="col" className="num">
                    Median
                  </th>
                  <th scope="col" className="num">
                    95th percentile
                  </th>
                </tr>
              </thead>
              <tbody>
                {t.time_to_gate.map((p) => (
                  <tr key={p.phase}>
                    <th scope="row">{p.phase}</th>
                    <td className="num">{count(p.runs)}</td>
                    <td className="num">{duration(p.avg_ms)}</td>
                    <td className="num">{duration(p.p50_ms)}</td>
                    <td className="num">{duration(p.p95_ms)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Panel>
      <Panel title="Recent ships" id="ships">
        {t.recent_ships.length === 0 ? (
          <Empty title="Nothing shipped yet." />
        ) : (
          <ul className="ships" data-testid="ships">
            {t.recent_ships.map((s) => (
              <li key={`${s.run_id}-${s.time}`}>
                <Link to={`/runs/${encodeURIComponent(s.run_id)}`}>Run {s.run_id}</Link>
                {s.project_id ? (
                  <>
                    {' · '}
                    <Link
                      to={`/projects/${encodeURIComponent(s.project_id)}?tenant_id=${encodeURIComponent(t.tenant_id)}`}
                    >
                      {s.project_id}
                    </Link>
                  </>
                ) : null}
                {s.artifact_path ? ` · ${s.artifact_path}@${s.artifact_version ?? '?'}` : ''}
                {s.partial ? <span className="tag">partial</span> : null} ·{' '}
                <span className="muted">{dateTime(s.time, t.time_zone)}</span>
              </li>
            ))}
          </ul>
        )}
      </Panel>
      <CapsPanel tenantId={t.tenant_id} timeZone={t.time_zone} />
      {mayReadPromptAudit ? <PromptAuditSummary tenantId={t.tenant_id} /> : null}
    </div>
  );
}

function Banners({ tenantId, timeZone }: { tenantId: string; timeZone: string }) {
  const whoami = useWhoAmI();
  const banners = useQuery({ queryKey: keys.banners(), queryFn: () => data(api.GET('/alerts/banners')) });
  const mayMute = usePermission('alerts.mute');
  const [rule, setRule] = useState('');
  const [hours, setHours] = useState('24');
  const id = useId();
  const own = (banners.data?.items ?? []).filter((b) => b.tenant_id === tenantId);
  return (
    <Panel
      title="Alerts"
      id="alerts"
      actions={
        mayMute ? (
          <ActionForm
            label="Mute alerts"
            run={(reason) =>
              data(
                api.POST('/alerts/mutes', {
                  body: {
                    ...(whoami.data?.tenant_id === tenantId ? {} : { tenant_id: tenantId }),
                    ...(rule ? { rule } : {}),
                    duration_hours: Number(hours),
                    reason,
                  },
                }),
              )
            }
            invalidate={[keys.banners()]}
          >
            <label htmlFor={`${id}-rule`}>Rule (empty: every rule)</label>
            <input id={`${id}-rule`} value={rule} onChange={(e) => setRule(e.target.value.trim())} />
            <label htmlFor={`${id}-hours`}>For (hours)</label>
            <input
              id={`${id}-hours`}
              type="number"
              min={1}
              max={2160}
              value={hours}
              onChange={(e) => setHours(e.target.value)}
            />
          </ActionForm>
        ) : null
      }
    >
      {banners.isPending ? (
        <Loading label="Loading alerts…" />
      ) : banners.isError ? (
        <ErrorState error={banners.error} what="alerts" />
      ) : own.length === 0 ? (
        <p className="muted" data-testid="no-banners">
          No open alert.
        </p>
      ) : (
        <ul className="banners" data-testid="banners">
          {own.map((b) => (
            <li key={b.id ?? `${b.rule}-${b.created_at}`} className={`banner banner-${b.severity ?? 'info'}`}>
              <strong>{b.title ?? b.rule ?? 'Alert'}</strong> {b.body}
              <span className="muted"> · {dateTime(b.created_at, timeZone)}</span>
            </li>
          ))}
        </ul>
      )}
    </Panel>
  );
}
