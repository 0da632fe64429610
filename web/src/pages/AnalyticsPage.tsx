import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, data } from '../api/client';
import { usePermission } from '../api/hooks';
import { keys } from '../api/keys';
import { BarChart, Heatmap, LineChart } from '../components/charts';
import { CsvDownload } from '../components/CsvDownload';
import { Empty, ErrorState, Loading, Panel } from '../components/states';
import { count, percent, usd } from '../format';
import { usdNumber } from '../overview/numbers';

type Period = '7d' | '30d';
type UsageQuery = {
  period: Period;
  group_by: 'agent' | 'tool' | 'mcp_server';
  kind?: 'llm' | 'tool';
  interval?: 'day';
};

/**
 * /analytics (docs/console.md "Analytics"): top agents by usage, tool calls per day, MCP server health per
 * day, cost trend by agent or tenant and tool error rates; every chart from one analytics route answer the
 * server aggregated (per group and day), each with its CSV export.
 */
export default function AnalyticsPage() {
  const [period, setPeriod] = useState<Period>('7d');
  const mayCost = usePermission('analytics.costs');
  return (
    <div className="page">
      <header className="page-header">
        <div>
          <p className="eyebrow">Usage and cost</p>
          <h1>Analytics</h1>
          <p className="muted">Whole UTC days ending today.</p>
        </div>
        <div className="page-header-side">
          <div className="segmented" role="group" aria-label="Period">
            {(['7d', '30d'] as const).map((p) => (
              <button
                key={p}
                type="button"
                aria-pressed={period === p}
                className={period === p ? 'button-primary' : 'button-secondary'}
                onClick={() => setPeriod(p)}
              >
                {p === '7d' ? '7 days' : '30 days'}
              </button>
            ))}
          </div>
        </div>
      </header>
      {mayCost ? (
        <>
          <TopAgents period={period} />
          <CostTrend period={period} />
          <ToolHeatmap period={period} />
          <McpHealth period={period} />
          <ToolErrors period={period} />
        </>
      ) : (
        <Empty title="Your role may not see usage and cost analytics." />
      )}
    </div>
  );
}

function toSearch(query: Record<string, string | undefined>): string {
  return new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => Boolean(e[1]))).toString();
}

function useUsage(query: UsageQuery) {
  return useQuery({
    queryKey: keys.analytics('usage', query),
    queryFn: () => data(api.GET('/api/v1/analytics/usage', { params: { query } })),
  });
}

/** Days of the period, oldest first, from the answer's period (the server's UTC days). */
function daysOf(period: { from_day: string; days: number }): string[] {
  const start = Date.parse(`${period.from_day}T00:00:00Z`);
  return Array.from({ length: period.days }, (_, i) => new Date(start + i * 86_400_000).toISOString().slice(0, 10));
}

function TopAgents({ period }: { period: Period }) {
  const query: UsageQuery = { period, group_by: 'agent' };
  const usage = useUsage(query);
  return (
    <Panel
      title="Top agents by usage"
      id="top-agents"
      actions={
        <CsvDownload path={`/api/v1/analytics/usage?${toSearch(query)}`} filename="top-agents.csv" label="CSV" />
      }
    >
      {usage.isPending ? (
        <Loading label="Loading agents…" />
      ) : usage.isError ? (
        <ErrorState error={usage.error} what="agent usage" />
      ) : usage.data.rows.length === 0 ? (
        <Empty title="No agent calls in this period." />
      ) : (
        <BarChart
          caption={`Calls per agent over ${period}`}
          bars={[...usage.data.rows]
            .sort((a, b) => b.calls - a.calls)
            .slice(0, 10)
            .map((r) => ({
              label: r.key ?? 'unattributed',
              value: r.calls,
              display: `${count(r.calls)} calls · ${usd(r.cost_usd)}`,
            }))}
        />
      )}
    </Panel>
  );
}

function CostTrend({ period }: { period: Period }) {
  const [groupBy, setGroupBy] = useState<'agent' | 'tenant'>('agent');
  const query = { period, group_by: groupBy, interval: 'day' as const };
  const costs = useQuery({
    queryKey: keys.analytics('costs', query),
    queryFn: () => data(api.GET('/api/v1/analytics/costs', { params: { query } })),
  });
  return (
    <Panel
      title="Cost trend"
      id="cost-trend"
      actions={
        <div className="panel-actions">
          <div className="segmented" role="group" aria-label="Group cost by">
            {(['agent', 'tenant'] as const).map((g) => (
              <button
                key={g}
                type="button"
                aria-pressed={groupBy === g}
                className={groupBy === g ? 'button-primary' : 'button-secondary'}
                onClick={() => setGroupBy(g)}
              >
                By {g}
              </button>
            ))}
          </div>
          <CsvDownload path={`/api/v1/analytics/costs?${toSearch(query)}`} filename="cost-trend.csv" label="CSV" />
        </div>
      }
    >
      {costs.isPending ? (
        <Loading label="Loading costs…" />
      ) : costs.isError ? (
        <ErrorState error={costs.error} what="costs" />
      ) : costs.data.rows.length === 0 ? (
        <Empty title="No cost in this period." />
      ) : (
        <>
          <p className="big-number" data-testid="cost-total">
            {usd(costs.data.totals.cost_usd)}
          </p>
          {(() => {
            const days = daysOf(costs.data.period);
            const groups = [...new Set(costs.data.rows.map((r) => r.key ?? 'unattributed'))];
            const value = new Map(
              costs.data.rows.map((r) => [`${r.key ?? 'unattributed'}\u0000${r.bucket}`, usdNumber(r.cost_usd)]),
            );
            return (
              <LineChart
                caption={`Cost per UTC day by ${groupBy}, US dollars`}
                labels={days}
                series={groups
                  .slice(0, 5)
                  .map((g) => ({ name: g, values: days.map((d) => value.get(`${g}\u0000${d}`) ?? 0) }))}
                format={(v) => `$${v.toFixed(2)}`}
              />
            );
          })()}
        </>
      )}
    </Panel>
  );
}

function ToolHeatmap({ period }: { period: Period }) {
  const query: UsageQuery = { period, group_by: 'tool', kind: 'tool', interval: 'day' };
  const usage = useUsage(query);
  return (
    <Panel
      title="Tool calls per day"
      id="tool-heatmap"
      actions={
        <CsvDownload path={`/api/v1/analytics/usage?${toSearch(query)}`} filename="tool-calls.csv" label="CSV" />
      }
    >
      {usage.isPending ? (
        <Loading label="Loading tool calls…" />
      ) : usage.isError ? (
        <ErrorState error={usage.error} what="tool calls" />
      ) : usage.data.rows.length === 0 ? (
        <Empty title="No tool calls in this period." />
      ) : (
        <DayHeatmap
          rows={usage.data.rows}
          days={daysOf(usage.data.period)}
          pick={(r) => r.calls}
          format={(v) => count(v)}
          rowHeader="Tool"
          caption="Tool calls per tool and UTC day, last 7 days"
        />
      )}
    </Panel>
  );
}

function McpHealth({ period }: { period: Period }) {
  const query: UsageQuery = { period, group_by: 'mcp_server', kind: 'tool', interval: 'day' };
  const usage = useUsage(query);
  return (
    <Panel
      title="MCP server health"
      id="mcp-health"
      actions={
        <CsvDownload path={`/api/v1/analytics/usage?${toSearch(query)}`} filename="mcp-health.csv" label="CSV" />
      }
    >
      {usage.isPending ? (
        <Loading label="Loading MCP servers…" />
      ) : usage.isError ? (
        <ErrorState error={usage.error} what="MCP server health" />
      ) : usage.data.rows.length === 0 ? (
        <Empty title="No MCP calls in this period." />
      ) : (
        <>
          <p className="muted">Share of failed calls per server and day (lower is healthier).</p>
          <DayHeatmap
            rows={usage.data.rows}
            days={daysOf(usage.data.period)}
            pick={(r) => r.error_rate}
            format={(v) => percent(v)}
            rowHeader="MCP server"
            caption="Failed call rate per MCP server and UTC day, last 7 days"
          />
        </>
      )}
    </Panel>
  );
}

function ToolErrors({ period }: { period: Period }) {
  const query: UsageQuery = { period, group_by: 'tool', kind: 'tool', interval: 'day' };
  const usage = useUsage(query);
  return (
    <Panel
      title="Tool failure rate"
      id="tool-errors"
      actions={
        <CsvDownload path={`/api/v1/analytics/usage?${toSearch(query)}`} filename="tool-errors.csv" label="CSV" />
      }
    >
      {usage.isPending ? (
        <Loading label="Loading tool failures…" />
      ) : usage.isError ? (
        <ErrorState error={usage.error} what="tool failures" />
      ) : usage.data.rows.length === 0 ? (
        <Empty title="No tool calls in this period." />
      ) : (
        (() => {
          const days = daysOf(usage.data.period);
          const tools = [...new Set(usage.data.rows.map((r) => r.key ?? 'unattributed'))];
          const rate = new Map(
            usage.data.rows.map((r) => [`${r.key ?? 'unattributed'}\u0000${r.bucket}`, r.error_rate]),
          );
          return (
            <>
              <p className="big-number" data-testid="tool-error-rate">
                {percent(usage.data.totals.error_rate)}
              </p>
              <LineChart
                caption="Failed tool calls per UTC day, share of calls, per tool"
                labels={days}
                series={tools
                  .slice(0, 5)
                  .map((t) => ({ name: t, values: days.map((d) => rate.get(`${t}\u0000${d}`) ?? null) }))}
                format={(v) => percent(v)}
              />
            </>
          );
        })()
      )}
    </Panel>
  );
}

type UsageRow = {
  bucket: string | null;
  key: string | null;
  calls: number;
  error_rate: number | null;
};

function DayHeatmap({
  rows,
  days,
  pick,
  format,
  rowHeader,
  caption,
}: {
  rows: UsageRow[];
  days: string[];
  pick: (row: UsageRow) => number | null;
  format: (value: number) => string;
  rowHeader: string;
  caption: string;
}) {
  const keysOfRows = [...new Set(rows.map((r) => r.key ?? 'unattributed'))];
  const cells = new Map(rows.map((r) => [`${r.key ?? 'unattributed'}\u0000${r.bucket}`, pick(r)]));
  // Newest first: today stays in view when a phone scrolls the table.
  const shown = days.slice(-7).reverse();
  return (
    <Heatmap
      caption={caption}
      rowHeader={rowHeader}
      rows={keysOfRows}
      columns={shown}
      value={(row, day) => cells.get(`${row}\u0000${day}`) ?? null}
      columnLabel={(day) => day.slice(5)}
      format={format}
    />
  );
}
