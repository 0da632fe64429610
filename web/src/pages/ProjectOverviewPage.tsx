import { useQuery } from '@tanstack/react-query';
import { Link, useParams, useSearchParams } from 'react-router';
import { api, data } from '../api/client';
import { keys } from '../api/keys';
import type { ColourVar } from '../components/chart-spec';
import { Heatmap, TimelineChart } from '../components/charts';
import { CsvDownload } from '../components/CsvDownload';
import { Empty, ErrorState, Loading, Panel } from '../components/states';
import { count, dateTime, duration, usd } from '../format';

/**
 * /projects/{id} (docs/console.md "Project Overview"): the next action, the latest run's phase timeline,
 * the artifact version heatmap, open flags and recent runs. Admins name the tenant with ?tenant_id= when a
 * project id exists in several tenants.
 */
/** A phase's colour on the timeline by its status (anything else: running). */
const STATUS_COLOURS: Record<string, ColourVar> = { passed: '--ok', succeeded: '--ok', failed: '--bad' };

export default function ProjectOverviewPage() {
  const { projectId = '' } = useParams();
  const [params] = useSearchParams();
  const tenantId = params.get('tenant_id') || undefined;
  const overview = useQuery({
    queryKey: keys.projects.overview(projectId, tenantId),
    queryFn: () =>
      data(
        api.GET('/projects/{project_id}/overview', {
          params: { path: { project_id: projectId }, query: tenantId ? { tenant_id: tenantId } : {} },
        }),
      ),
  });

  if (overview.isPending) return <Loading label="Loading the project…" />;
  if (overview.isError) {
    return (
      <div className="page">
        <h1>Project {projectId}</h1>
        <ErrorState error={overview.error} what="this project" />
      </div>
    );
  }
  const p = overview.data;
  const spans = p.phase_timeline
    .filter((s) => s.started_at)
    .map((s) => {
      const start = Date.parse(s.started_at!);
      return {
        key: `${s.phase}-${s.attempt}`,
        row: s.attempt > 1 ? `${s.phase} #${s.attempt}` : s.phase,
        start,
        // A running phase reaches to now (placement only; its elapsed time is the server's).
        end: s.finished_at ? Date.parse(s.finished_at) : Math.max(start + (s.elapsed_ms ?? 0), Date.now()),
        colour: STATUS_COLOURS[s.status] ?? '--run',
        title: `${s.status} · ${duration(s.elapsed_ms)}${s.role ? ` · ${s.role}` : ''}`,
      };
    });
  const phases = [...new Set(p.artifact_heatmap.map((h) => h.phase))];
  const versions = [...new Set(p.artifact_heatmap.map((h) => h.version))];
  const writes = new Map(p.artifact_heatmap.map((h) => [`${h.phase}\u0000${h.version}`, h.writes]));
  const query = tenantId ? `?tenant_id=${encodeURIComponent(tenantId)}` : '';

  return (
    <div className="page">
      <header className="page-header">
        <div>
          <p className="eyebrow">
            Project ·{' '}
            <Link to={`/tenants/${encodeURIComponent(p.tenant_id)}`} aria-label={`Tenant ${p.tenant_id}`}>
              {p.tenant_id}
            </Link>
          </p>
          <h1>{p.project_id}</h1>
        </div>
        <div className="page-header-side">
          <CsvDownload
            path={`/projects/${encodeURIComponent(projectId)}/overview${query}`}
            filename={`project-${projectId}-overview.csv`}
            label="Export CSV"
          />
        </div>
      </header>
      <Panel title="Next action" id="next-action">
        <p className="big-number" data-testid="next-action">
          {p.next_action.action.replace(/_/g, ' ')}
        </p>
        <p>
          {p.next_action.reason}
          {p.next_action.run_id ? (
            <>
              {' · '}
              <Link to={`/runs/${encodeURIComponent(p.next_action.run_id)}`}>Run {p.next_action.run_id}</Link>
            </>
          ) : null}
          {p.next_action.phase ? <span className="tag">phase {p.next_action.phase}</span> : null}
        </p>
      </Panel>
      <div className="grid">
        <Panel title="Phase timeline" id="phase-timeline">
          {p.latest_run ? (
            <p className="muted">
              Latest run <Link to={`/runs/${encodeURIComponent(p.latest_run.run_id)}`}>{p.latest_run.run_id}</Link> ·{' '}
              <span className={`status status-${p.latest_run.status}`}>{p.latest_run.status}</span> ·{' '}
              {usd(p.latest_run.cost_usd)}
            </p>
          ) : null}
          {spans.length === 0 ? (
            <Empty title="No phase has started yet." />
          ) : (
            <TimelineChart
              rows={spans.map((s) => s.row)}
              spans={spans}
              legend={[
                { name: 'passed', colour: '--ok' },
                { name: 'failed', colour: '--bad' },
                { name: 'running', colour: '--run' },
              ]}
              caption="Phases of the latest run over time, with their status and elapsed time"
            />
          )}
        </Panel>
        <Panel title="Artifact versions" id="artifact-heatmap">
          {phases.length === 0 ? (
            <Empty title="No artifact written yet." />
          ) : (
            <Heatmap
              caption="Artifact versions written per phase over the recent runs (writes)"
              rowHeader="Phase"
              rows={phases}
              columns={versions}
              value={(phase, version) => writes.get(`${phase}\u0000${version}`) ?? null}
              format={(v) => `${count(v)}×`}
            />
          )}
        </Panel>
      </div>
      <Panel title="Open flags" id="open-flags">
        {p.open_flags.length === 0 ? (
          <Empty title="No open flag." />
        ) : (
          <ul className="failures" data-testid="open-flags">
            {p.open_flags.map((f) => (
              <li key={`${f.run_id}-${f.phase}`} className="failure">
                <div className="failure-head">
                  <Link to={`/runs/${encodeURIComponent(f.run_id)}`}>Run {f.run_id}</Link>
                  <span className="tag">phase {f.phase}</span>
                  {f.role ? <span className="tag">role {f.role}</span> : null}
                </div>
                <p className="why">
                  <strong>Why blocked:</strong> {f.why_blocked}
                </p>
                <p className="muted">
                  Artifact: {f.artifact_ref ?? '—'} · last seen {dateTime(f.last_seen, p.time_zone)}
                </p>
              </li>
            ))}
          </ul>
        )}
      </Panel>
      <Panel title="Recent runs" id="recent-runs">
        {p.recent_runs.length === 0 ? (
          <Empty title="No run yet." />
        ) : (
          <div className="table-wrap" role="region" aria-label="Recent runs" tabIndex={0}>
            <table>
              <caption className="visually-hidden">Recent runs of the project</caption>
              <thead>
                <tr>
                  <th scope="col">Run</th>
                  <th scope="col">Status</th>
                  <th scope="col">Phase</th>
                  <th scope="col" className="num">
                    Cost
                  </th>
                  <th scope="col">Started</th>
                </tr>
              </thead>
              <tbody>
                {p.recent_runs.map((r) => (
                  <tr key={r.run_id}>
                    <th scope="row">
                      <Link to={`/runs/${encodeURIComponent(r.run_id)}`}>{r.run_id}</Link>
                    </th>
                    <td>
                      <span className={`status status-${r.status}`}>{r.status}</span>
                    </td>
                    <td>{r.phase ?? '—'}</td>
                    <td className="num">{usd(r.cost_usd)}</td>
                    <td>{dateTime(r.started_at, p.time_zone)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Panel>
    </div>
  );
}
