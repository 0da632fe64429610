import { useQuery } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { type Answer, api, data } from '../api/client';
import { usePermission } from '../api/hooks';
import { keys } from '../api/keys';
import { ActionForm } from '../components/ActionForm';
import { BarChart, LineChart } from '../components/charts';
import { CsvDownload } from '../components/CsvDownload';
import { Empty, ErrorState, Loading, Panel } from '../components/states';
import { count, dateTime, percent, tokens, usd } from '../format';
import { CapsPanel } from '../overview/CapsPanel';
import { usdNumber } from '../overview/numbers';

type AdminOverview = Answer<'/admin/overview'>;
type Failure = AdminOverview['last_failures'][number];

/**
 * /admin (docs/console.md "Admin Overview"): today's spend by model and tenant, the last 10 failures with
 * why each is blocked, stuck projects, caps approaching, 7/30-day trends, filters by tenant/model/phase,
 * and the quick actions (pause/unpause, reopen phase, rerun last step, raise caps, CSV), each audited.
 */
export default function AdminOverviewPage() {
  const [params, setParams] = useSearchParams();
  const filters = {
    tenant_id: params.get('tenant_id') || undefined,
    model: params.get('model') || undefined,
    phase: params.get('phase') || undefined,
  };
  const overview = useQuery({
    queryKey: keys.admin.overview(filters),
    queryFn: () => data(api.GET('/admin/overview', { params: { query: filters } })),
  });
  const query = new URLSearchParams(Object.entries(filters).filter((e): e is [string, string] => Boolean(e[1])));

  return (
    <div className="page">
      <header className="page-header">
        <div>
          <p className="eyebrow">Platform</p>
          <h1>Admin Overview</h1>
          {overview.data ? <p className="muted">Today is {overview.data.day} (UTC).</p> : null}
        </div>
        <div className="page-header-side">
          <CsvDownload
            path={`/admin/overview${query.size ? `?${query}` : ''}`}
            filename="admin-overview.csv"
            label="Export CSV"
          />
        </div>
      </header>
      <Filters
        value={filters}
        onChange={(next) =>
          setParams(new URLSearchParams(Object.entries(next).filter((e): e is [string, string] => Boolean(e[1]))))
        }
      />
      {overview.isPending ? (
        <Loading label="Loading the overview…" />
      ) : overview.isError ? (
        <ErrorState error={overview.error} what="the Admin Overview" />
      ) : (
        <Overview overview={overview.data} filters={filters} />
      )}
    </div>
  );
}

function Filters({
  value,
  onChange,
}: {
  value: Record<string, string | undefined>;
  onChange: (next: Record<string, string | undefined>) => void;
}) {
  const [draft, setDraft] = useState(value);
  function submit(event: FormEvent) {
    event.preventDefault();
    onChange(draft);
  }
  const field = (name: 'tenant_id' | 'model' | 'phase', label: string) => (
    <label>
      {label}
      <input
        name={name}
        value={draft[name] ?? ''}
        onChange={(e) => setDraft({ ...draft, [name]: e.target.value.trim() || undefined })}
      />
    </label>
  );
  return (
    <form className="filters" onSubmit={submit} aria-label="Filters">
      {field('tenant_id', 'Tenant')}
      {field('model', 'Model')}
      {field('phase', 'Phase')}
      <button type="submit" className="button-primary">
        Apply
      </button>
      <button
        type="button"
        className="button-secondary"
        onClick={() => {
          setDraft({});
          onChange({});
        }}
      >
        Clear
      </button>
    </form>
  );
}

function Overview({ overview, filters }: { overview: AdminOverview; filters: Record<string, string | undefined> }) {
  const [range, setRange] = useState<7 | 30>(7);
  const mayPause = usePermission('tenant.pause');
  const days = overview.trends.days.slice(-range);
  const totals = range === 7 ? overview.trends.last_7_days : overview.trends.last_30_days;
  const spend = overview.spend_today;
  const invalidate = [keys.admin.overview(filters)];

  return (
    <>
      {overview.notes.length > 0 ? (
        <div className="notice" role="note">
          {overview.notes.map((note) => (
            <p key={note}>{note}</p>
          ))}
        </div>
      ) : null}
      <div className="grid">
        <Panel title="Spend today" id="spend-today">
          <p className="big-number" data-testid="spend-total">
            {usd(spend.total_usd)}
          </p>
          <h3>By model</h3>
          {spend.by_model.length === 0 ? (
            <Empty title="No LLM spend today." />
          ) : (
            <BarChart
              caption="Spend today by model, US dollars"
              bars={spend.by_model.map((m) => ({
                label: m.model,
                value: usdNumber(m.cost_usd),
                display: `${usd(m.cost_usd)} · ${count(m.calls)} calls`,
              }))}
            />
          )}
          <h3>By tenant</h3>
          {spend.by_tenant.length === 0 ? (
            <Empty title="No spend today." />
          ) : (
            <div className="table-wrap" role="region" aria-label="Spend today by tenant" tabIndex={0}>
              <table data-testid="spend-by-tenant">
                <caption className="visually-hidden">Spend today by tenant</caption>
                <thead>
                  <tr>
                    <th scope="col">Tenant</th>
                    <th scope="col" className="num">
                      Total
                    </th>
                    <th scope="col" className="num hide-narrow">
                      LLM
                    </th>
                    <th scope="col" className="num hide-narrow">
                      External
                    </th>
                    {mayPause ? <th scope="col">Actions</th> : null}
                  </tr>
                </thead>
                <tbody>
                  {spend.by_tenant.map((t) => (
                    <tr key={t.tenant_id}>
                      <th scope="row">
                        <Link to={`/tenants/${encodeURIComponent(t.tenant_id)}`}>{t.tenant_id}</Link>
                      </th>
                      <td className="num">{usd(t.cost_usd)}</td>
                      <td className="num hide-narrow">{usd(t.llm_cost_usd)}</td>
                      <td className="num hide-narrow">{usd(t.external_cost_usd)}</td>
                      {mayPause ? (
                        <td>
                          <PauseActions tenantId={t.tenant_id} invalidate={invalidate} />
                        </td>
                      ) : null}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Panel>
        <Panel
          title="Token and cost trends"
          id="trends"
          actions={
            <div className="segmented" role="group" aria-label="Trend range">
              {([7, 30] as const).map((n) => (
                <button
                  key={n}
                  type="button"
                  aria-pressed={range === n}
                  className={range === n ? 'button-primary' : 'button-secondary'}
                  onClick={() => setRange(n)}
                >
                  {n} days
                </button>
              ))}
            </div>
          }
        >
          <dl className="facts">
            <div>
              <dt>Cost, last {range} days</dt>
              <dd data-testid={`trend-cost-${range}`}>{usd(totals.cost_usd)}</dd>
            </div>
            <div>
              <dt>Tokens, last {range} days</dt>
              <dd data-testid={`trend-tokens-${range}`}>{tokens(totals.total_tokens)}</dd>
            </div>
          </dl>
          <h3>Cost per day</h3>
          <LineChart
            caption={`Cost per UTC day over the last ${range} days, US dollars`}
            labels={days.map((d) => d.day)}
            series={[{ name: 'Cost', values: days.map((d) => usdNumber(d.cost_usd)) }]}
            area
            format={(v) => `$${v.toFixed(2)}`}
          />
          {days.some((d) => d.total_tokens !== undefined) ? (
            <>
              <h3>Tokens per day</h3>
              <LineChart
                caption={`Input and output tokens per UTC day over the last ${range} days`}
                labels={days.map((d) => d.day)}
                series={[
                  { name: 'Input tokens', values: days.map((d) => d.input_tokens ?? null) },
                  { name: 'Output tokens', values: days.map((d) => d.output_tokens ?? null) },
                ]}
                format={(v) => tokens(Math.round(v))}
              />
            </>
          ) : null}
        </Panel>
      </div>
      <Panel title="Last failures" id="failures">
        {overview.last_failures.length === 0 ? (
          <Empty title="No failures. Every recent phase passed." />
        ) : (
          <ul className="failures" data-testid="failures">
            {overview.last_failures.map((f) => (
              <FailureItem key={`${f.run_id}-${f.phase}`} failure={f} invalidate={invalidate} />
            ))}
          </ul>
        )}
      </Panel>
      <div className="grid">
        <Panel title="Stuck projects" id="stuck">
          {overview.stuck_projects.length === 0 ? (
            <Empty title="No project is stuck." />
          ) : (
            <div className="table-wrap" role="region" aria-label="Stuck projects" tabIndex={0}>
              <table data-testid="stuck">
                <caption className="visually-hidden">Projects with running runs and no recent events</caption>
                <thead>
                  <tr>
                    <th scope="col">Project</th>
                    <th scope="col" className="num">
                      Running runs
                    </th>
                    <th scope="col" className="num">
                      Silent for
                    </th>
                    <th scope="col">Phases</th>
                  </tr>
                </thead>
                <tbody>
                  {overview.stuck_projects.map((p) => (
                    <tr key={`${p.tenant_id}/${p.project_id}`}>
                      <th scope="row">
                        <Link
                          to={`/projects/${encodeURIComponent(p.project_id)}?tenant_id=${encodeURIComponent(p.tenant_id)}`}
                        >
                          {p.project_id}
                        </Link>
                        <span className="muted"> · {p.tenant_id}</span>
                      </th>
                      <td className="num">{count(p.running_runs)}</td>
                      <td className="num">{count(p.silent_minutes)} min</td>
                      <td>{p.phases.join(', ') || '—'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Panel>
        <Panel title="Caps approaching" id="caps-approaching">
          {overview.caps_approaching.length === 0 ? (
            <Empty title="No cap is near its limit." />
          ) : (
            <div className="table-wrap" role="region" aria-label="Caps approaching" tabIndex={0}>
              <table data-testid="caps-approaching">
                <caption className="visually-hidden">Caps at or above their warning ratio</caption>
                <thead>
                  <tr>
                    <th scope="col">Scope</th>
                    <th scope="col">Cap</th>
                    <th scope="col" className="num">
                      Used
                    </th>
                    <th scope="col" className="num">
                      Limit
                    </th>
                    <th scope="col" className="num">
                      Use
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {overview.caps_approaching.map((c) => (
                    <tr key={`${c.scope}-${c.tenant_id}-${c.run_id ?? ''}-${c.cap}`}>
                      <th scope="row">
                        {c.run_id ? (
                          <Link to={`/runs/${encodeURIComponent(c.run_id)}`}>run {c.run_id}</Link>
                        ) : (
                          <Link to={`/tenants/${encodeURIComponent(c.tenant_id)}`}>tenant {c.tenant_id}</Link>
                        )}
                      </th>
                      <td>{c.cap}</td>
                      <td className="num">{capValue(c.cap, c.used)}</td>
                      <td className="num">{capValue(c.cap, c.limit)}</td>
                      <td className="num">{percent(c.ratio)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </Panel>
      </div>
      {filters.tenant_id ? <CapsPanel tenantId={filters.tenant_id} /> : null}
    </>
  );
}

/** Cap values carry their unit: USD for cost caps, tokens or seconds otherwise. */
export function capValue(cap: string, value: string): string {
  if (cap.includes('token')) return tokens(Number(value));
  if (cap.includes('wall')) return `${count(Number(value))} s`;
  return usd(value);
}

function PauseActions({ tenantId, invalidate }: { tenantId: string; invalidate: ReadonlyArray<readonly unknown[]> }) {
  const call = (path: '/tenants/{tenant_id}/pause' | '/tenants/{tenant_id}/unpause') => (reason: string) =>
    data(api.POST(path, { params: { path: { tenant_id: tenantId } }, body: { reason } }));
  return (
    <div className="row-actions">
      <ActionForm
        label="Pause"
        context={tenantId}
        run={call('/tenants/{tenant_id}/pause')}
        invalidate={[...invalidate, keys.tenants.caps(tenantId)]}
        danger
      />
      <ActionForm
        label="Unpause"
        context={tenantId}
        run={call('/tenants/{tenant_id}/unpause')}
        invalidate={[...invalidate, keys.tenants.caps(tenantId)]}
      />
    </div>
  );
}

function FailureItem({ failure: f, invalidate }: { failure: Failure; invalidate: ReadonlyArray<readonly unknown[]> }) {
  const mayControl = usePermission('runs.control');
  return (
    <li className="failure">
      <div className="failure-head">
        <Link to={`/runs/${encodeURIComponent(f.run_id)}`}>Run {f.run_id}</Link>
        <span className="tag">phase {f.phase}</span>
        {f.role ? <span className="tag">role {f.role}</span> : null}
        <span className="muted">
          {f.tenant_id}
          {f.project_id ? (
            <>
              {' · '}
              <Link to={`/projects/${encodeURIComponent(f.project_id)}?tenant_id=${encodeURIComponent(f.tenant_id)}`}>
                {f.project_id}
              </Link>
            </>
          ) : null}
        </span>
      </div>
      <p className="why">
        <strong>Why blocked:</strong> {f.why_blocked}
        {f.count > 1 ? <span className="muted"> ({count(f.count)} times)</span> : null}
      </p>
      <p className="muted">
        Artifact:{' '}
        {f.artifact_url ? (
          <a href={f.artifact_url} target="_blank" rel="noopener noreferrer">
            {f.artifact_ref ?? 'open'} <span className="visually-hidden">(opens in a new tab)</span>
          </a>
        ) : (
          (f.artifact_ref ?? '—')
        )}{' '}
        · last seen {dateTime(f.last_seen)}
        {f.trace_url ? (
          <>
            {' · '}
            <a href={f.trace_url} target="_blank" rel="noopener noreferrer">
              View trace <span className="visually-hidden">(opens in a new tab)</span>
            </a>
          </>
        ) : null}
      </p>
      {mayControl ? (
        <div className="row-actions">
          <ActionForm
            label={`Reopen ${f.phase}`}
            run={(reason) =>
              data(
                api.POST('/runs/{run_id}/reopen-phase', {
                  params: { path: { run_id: f.run_id } },
                  body: { phase: f.phase, reason },
                }),
              )
            }
            invalidate={invalidate}
          />
          <ActionForm
            label="Rerun last step"
            run={(reason) =>
              data(
                api.POST('/runs/{run_id}/rerun-last-step', {
                  params: { path: { run_id: f.run_id } },
                  body: { reason },
                }),
              )
            }
            invalidate={invalidate}
          />
        </div>
      ) : null}
    </li>
  );
}
