import { useQuery } from '@tanstack/react-query';
import { useParams } from 'react-router';
import { api, data } from '../api/client';
import { useWhoAmI } from '../api/hooks';
import { keys } from '../api/keys';
import { CorrelationChip } from '../components/CorrelationChip';
import { EnvProvenance } from '../components/EnvProvenance';
import { LastSyncedBadge } from '../components/LastSyncedBadge';
import { ErrorState, Loading } from '../components/states';
import { CostAndCaps, Outcome } from '../runs/CostAndCaps';
import { LatencyPanel } from '../runs/LatencyPanel';
import { McpCachePanel } from '../runs/McpCachePanel';
import { MILESTONE_TYPES, Timeline } from '../runs/Timeline';
import { TokenUsagePanel } from '../runs/TokenUsagePanel';
import { useRunStream } from '../runs/useRunStream';

/**
 * /runs/{run_id} (docs/console.md "Run detail"): token usage, latency, MCP cache, the timeline, cost against
 * caps and why the run stopped. A running run follows its stream; observability links only for the roles
 * the API gives them to (it leaves them out of the answer for everyone else, and so does the page).
 */
export default function RunDetailPage() {
  const { runId = '' } = useParams();
  const whoami = useWhoAmI();
  const metrics = useQuery({
    queryKey: keys.runs.metrics(runId),
    queryFn: () => data(api.GET('/runs/{run_id}/metrics', { params: { path: { run_id: runId } } })),
  });
  const mayReadEvents = Boolean(whoami.data?.permissions['runs.events']);
  const events = useQuery({
    queryKey: keys.runs.events(runId),
    queryFn: () =>
      data(
        api.GET('/runs/{run_id}/events', {
          params: { path: { run_id: runId }, query: { limit: 500, types: MILESTONE_TYPES.join(',') } },
        }),
      ),
    enabled: mayReadEvents,
  });
  const running = metrics.data?.status === 'running';
  const live = useRunStream(runId, running);

  if (metrics.isPending) return <Loading label="Loading run…" />;
  if (metrics.isError) {
    return (
      <div className="page">
        <h1>Run {runId}</h1>
        <ErrorState error={metrics.error} what="this run" />
      </div>
    );
  }
  const run = metrics.data;
  const observability = Boolean(whoami.data?.observability_links);
  const grafana = observability ? run.grafana_url : null;
  // The offset of this browser's clock from the server's, so live counters agree with the server.
  const skewMs = Date.parse(run.server_time) - metrics.dataUpdatedAt;

  return (
    <div className="page run-detail">
      <header className="page-header">
        <div>
          <p className="eyebrow">Run</p>
          <h1>
            {run.run_id}{' '}
            <span className={`status status-${run.status}`} data-testid="run-status">
              {run.status}
            </span>
          </h1>
          <div className="chips">
            <CorrelationChip label="run" value={run.run_id} />
            <CorrelationChip label="tenant" value={run.tenant_id} />
            <CorrelationChip label="project" value={run.project_id} />
          </div>
        </div>
        <div className="page-header-side">
          <LastSyncedBadge syncedAt={run.freshness.last_synced_at} live={live} />
          <EnvProvenance environment={run.environment} />
          {grafana ? (
            <a className="button-secondary" href={grafana} target="_blank" rel="noopener noreferrer">
              Open in Grafana <span className="visually-hidden">(opens in a new tab)</span>
            </a>
          ) : null}
        </div>
      </header>

      <div className="grid">
        <Outcome run={run} events={events.data?.items} />
        <CostAndCaps run={run} events={events.data?.items} />
      </div>
      <TokenUsagePanel run={run} />
      <LatencyPanel run={run} skewMs={skewMs} observability={observability} />
      <McpCachePanel cache={run.mcp_cache} />
      <Timeline query={events} allowed={mayReadEvents} />
    </div>
  );
}
