import { useQuery } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { api, data } from '../api/client';
import type { paths } from '../api/schema';
import { usePermission } from '../api/hooks';
import { keys } from '../api/keys';
import type { ColourVar } from '../components/chart-spec';
import { BarChart, Heatmap, LineChart, type Marker, type Span, TimelineChart } from '../components/charts';
import { CsvDownload } from '../components/CsvDownload';
import { Empty, ErrorState, Loading, Panel, TableWrap } from '../components/states';
import { count, dateTime, duration, percent, usd } from '../format';
import { usdNumber } from '../overview/numbers';

type Period = '7d' | '30d';
type Query = Record<string, string | undefined>;
type UsageQuery = NonNullable<paths['/api/v1/analytics/usage']['get']['parameters']['query']>;
type CostsQuery = NonNullable<paths['/api/v1/analytics/costs']['get']['parameters']['query']>;

/**
 * /analytics (docs/console.md "Analytics"): top agents by usage, cost trend by agent or tenant, tool calls by
 * hour of the week and per tool, MCP server health with circuit-breaker events, and error-rate trends of tool
 * calls and webhook deliveries. Every chart draws one analytics answer the server aggregated; each panel's
 * CSV button asks the same route for text/csv.
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
          <Toggle
            label="Period"
            options={[
              ['7d', '7 days'],
              ['30d', '30 days'],
            ]}
            value={period}
            onChange={setPeriod}
          />
        </div>
      </header>
      {mayCost ? (
        <>
          <TopAgents period={period} />
          <CostTrend period={period} />
          <ToolHeatmap period={period} />
          <McpHealth period={period} />
          <ErrorRates period={period} />
        </>
      ) : (
        <Empty title="Your role may not see usage and cost analytics." />
      )}
    </div>
  );
}

function Toggle<T extends string>({
  label,
  options,
  value,
  onChange,
}: {
  label: string;
  options: Array<[T, string]>;
  value: T;
  onChange: (value: T) => void;
}) {
  return (
    <div className="segmented" role="group" aria-label={label}>
      {options.map(([option, text]) => (
        <button
          key={option}
          type="button"
          aria-pressed={value === option}
          className={value === option ? 'button-primary' : 'button-secondary'}
          onClick={() => onChange(option)}
        >
          {text}
        </button>
      ))}
    </div>
  );
}

function toSearch(query: UsageQuery | CostsQuery | Query): string {
  return new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => Boolean(e[1]))).toString();
}

/** One panel's answer: loading, error and empty states, then the chart. */
function Answer<T>({
  answer,
  what,
  empty,
  children,
}: {
  answer: { isPending: boolean; isError: boolean; error: unknown; data?: T };
  what: string;
  empty: (data: T) => string | null;
  children: (data: T) => ReactNode;
}) {
  if (answer.isPending) return <Loading label={`Loading ${what}…`} />;
  if (answer.isError) return <ErrorState error={answer.error} what={what} />;
  const body = answer.data as T;
  const nothing = empty(body);
  return nothing ? <Empty title={nothing} /> : <>{children(body)}</>;
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

const label = (key: string | null) => key ?? 'unattributed';

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
      <Answer
        answer={usage}
        what="agents"
        empty={(u) => (u.rows.length === 0 ? 'No agent calls in this period.' : null)}
      >
        {(u) => (
          <BarChart
            caption={`Calls per agent over the last ${u.period.days} days`}
            bars={[...u.rows]
              .sort((a, b) => b.calls - a.calls)
              .slice(0, 10)
              .map((r) => ({
                label: label(r.key),
                value: r.calls,
                display: `${count(r.calls)} calls · ${usd(r.cost_usd)}`,
              }))}
          />
        )}
      </Answer>
    </Panel>
  );
}

function CostTrend({ period }: { period: Period }) {
  const [groupBy, setGroupBy] = useState<'agent' | 'tenant'>('agent');
  const query: CostsQuery = { period, group_by: groupBy, interval: 'day' };
  const ranking: CostsQuery = { period, group_by: groupBy };
  const costs = useQuery({
    queryKey: keys.analytics('costs', query),
    queryFn: () => data(api.GET('/api/v1/analytics/costs', { params: { query } })),
  });
  // The groups ranked by their cost over the period (the server's order), to pick the lines drawn.
  const ranked = useQuery({
    queryKey: keys.analytics('costs', ranking),
    queryFn: () => data(api.GET('/api/v1/analytics/costs', { params: { query: ranking } })),
  });
  return (
    <Panel
      title="Cost trend"
      id="cost-trend"
      actions={
        <div className="panel-actions">
          <Toggle
            label="Group cost by"
            options={[
              ['agent', 'By agent'],
              ['tenant', 'By tenant'],
            ]}
            value={groupBy}
            onChange={setGroupBy}
          />
          <CsvDownload path={`/api/v1/analytics/costs?${toSearch(query)}`} filename="cost-trend.csv" label="CSV" />
        </div>
      }
    >
      <Answer answer={costs} what="costs" empty={(c) => (c.rows.length === 0 ? 'No cost in this period.' : null)}>
        {(c) => {
          const days = daysOf(c.period);
          const top = (ranked.data?.rows ?? []).slice(0, 5);
          const value = new Map(c.rows.map((r) => [`${label(r.key)}\u0000${r.bucket}`, usdNumber(r.cost_usd)]));
          return (
            <>
              <p className="big-number" data-testid="cost-total">
                {usd(c.totals.cost_usd)}
              </p>
              {ranked.data && ranked.data.rows.length > 5 ? (
                <p className="muted">The 5 costliest of {ranked.data.rows.length}; the CSV has every one.</p>
              ) : null}
              <LineChart
                caption={`Cost per UTC day by ${groupBy}, US dollars`}
                rowHeader="UTC day"
                labels={days}
                area
                series={top.map((g) => ({
                  name: `${label(g.key)} · ${usd(g.cost_usd)}`,
                  values: days.map((d) => value.get(`${label(g.key)}\u0000${d}`) ?? 0),
                }))}
                format={(v) => `$${v.toFixed(2)}`}
              />
            </>
          );
        }}
      </Answer>
    </Panel>
  );
}

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const HOURS = Array.from({ length: 24 }, (_, h) => String(h).padStart(2, '0'));

function ToolHeatmap({ period }: { period: Period }) {
  const query = { period };
  const perTool: UsageQuery = { period, group_by: 'tool', kind: 'tool', interval: 'day' };
  const hours = useQuery({
    queryKey: keys.analytics('tool-call-hours', query),
    queryFn: () => data(api.GET('/api/v1/analytics/tool-calls/hours', { params: { query } })),
  });
  const tools = useUsage(perTool);
  return (
    <Panel
      title="When tools are called"
      id="tool-heatmap"
      actions={
        <div className="panel-actions">
          <CsvDownload
            path={`/api/v1/analytics/tool-calls/hours?${toSearch(query)}`}
            filename="tool-call-hours.csv"
            label="CSV"
          />
          <CsvDownload
            path={`/api/v1/analytics/usage?${toSearch(perTool)}`}
            filename="tool-calls-per-day.csv"
            label="Per tool CSV"
          />
        </div>
      }
    >
      <Answer
        answer={hours}
        what="tool calls"
        empty={(h) => (h.rows.length === 0 ? 'No tool calls in this period.' : null)}
      >
        {(h) => {
          const cells = new Map(h.rows.map((r) => [`${WEEKDAYS[r.day_of_week - 1]}\u0000${HOURS[r.hour]}`, r.calls]));
          return (
            <>
              <p className="big-number" data-testid="tool-calls-total">
                {count(h.totals.calls)} calls
              </p>
              <h3>By hour of the day and day of the week (UTC)</h3>
              <Heatmap
                caption={`Tool calls per UTC hour and day of the week, last ${h.period.days} days`}
                rowHeader="Day"
                rows={WEEKDAYS}
                columns={HOURS}
                value={(day, hour) => cells.get(`${day}\u0000${hour}`) ?? null}
                format={(v) => count(v)}
                labelEvery={3}
              />
            </>
          );
        }}
      </Answer>
      <h3>Per tool and UTC day</h3>
      <Answer answer={tools} what="tool calls per tool" empty={(u) => (u.rows.length === 0 ? 'No tool calls.' : null)}>
        {(u) => {
          const names = [...new Set(u.rows.map((r) => label(r.key)))];
          const calls = new Map(u.rows.map((r) => [`${label(r.key)}\u0000${r.bucket}`, r.calls]));
          // The last 7 days, so a phone still shows a day's column wide enough to read.
          const days = daysOf(u.period).slice(-7);
          return (
            <Heatmap
              caption="Tool calls per tool and UTC day, last 7 days"
              rowHeader="Tool"
              rows={names}
              columns={days}
              value={(tool, day) => calls.get(`${tool}\u0000${day}`) ?? null}
              columnLabel={(day) => day.slice(5)}
              format={(v) => count(v)}
            />
          );
        }}
      </Answer>
    </Panel>
  );
}

const STATE_COLOURS: Record<'up' | 'degraded' | 'down', ColourVar> = { up: '--ok', degraded: '--warn', down: '--bad' };
const HOUR_MS = 3_600_000;

function McpHealth({ period }: { period: Period }) {
  const query = { period };
  const health = useQuery({
    queryKey: keys.analytics('mcp-health', query),
    queryFn: () => data(api.GET('/api/v1/analytics/mcp-health', { params: { query } })),
  });
  const breakers = useQuery({
    queryKey: keys.analytics('mcp-breaker-events', query),
    queryFn: () => data(api.GET('/api/v1/analytics/mcp-breaker-events', { params: { query } })),
  });
  return (
    <Panel
      title="MCP server health"
      id="mcp-health"
      actions={
        <div className="panel-actions">
          <CsvDownload path={`/api/v1/analytics/mcp-health?${toSearch(query)}`} filename="mcp-health.csv" label="CSV" />
          <CsvDownload
            path={`/api/v1/analytics/mcp-breaker-events?${toSearch(query)}`}
            filename="mcp-breaker-events.csv"
            label="Breaker events CSV"
          />
        </div>
      }
    >
      <Answer
        answer={health}
        what="MCP server health"
        empty={(h) => (h.rows.length === 0 ? 'No MCP calls in this period.' : null)}
      >
        {(h) => {
          const events = breakers.data?.rows ?? [];
          const servers = h.servers.map((s) => s.server);
          const spans: Span[] = h.rows.map((r) => ({
            key: `${r.server}@${r.hour}`,
            row: r.server,
            start: Date.parse(r.hour),
            end: Date.parse(r.hour) + HOUR_MS,
            colour: STATE_COLOURS[r.state],
            title: `${r.state} · ${dateTime(r.hour)} · ${count(r.failures)} of ${count(r.calls)} calls failed`,
          }));
          const markers: Marker[] = events
            .filter((e) => servers.includes(e.server))
            .flatMap((e) => [
              {
                key: `${e.server}@${e.opened_at}`,
                row: e.server,
                at: Date.parse(e.opened_at),
                colour: '--bad' as const,
                title: `Breaker opened ${dateTime(e.opened_at)}`,
              },
              ...(e.closed_at
                ? [
                    {
                      key: `${e.server}@${e.closed_at}-closed`,
                      row: e.server,
                      at: Date.parse(e.closed_at),
                      colour: '--ok' as const,
                      title: `Breaker closed ${dateTime(e.closed_at)}`,
                      place: 'below' as const,
                    },
                  ]
                : []),
            ]);
          // From the first UTC day with a call: a week of hours would leave a day's hours a few pixels wide.
          const firstDay = Math.floor(Math.min(...spans.map((s) => s.start)) / (24 * HOUR_MS)) * 24 * HOUR_MS;
          return (
            <>
              <p className="muted">
                Per UTC hour with calls, from the first day with one: up (no call failed), degraded, down (every call
                failed); circuit-breaker openings above, closings below.
              </p>
              <TimelineChart
                caption={
                  `MCP servers per UTC hour, from the first day with a call in the last ${h.period.days} days, ` +
                  'with circuit-breaker events'
                }
                rows={servers}
                spans={spans}
                markers={markers}
                from={firstDay}
                to={Date.parse(`${h.period.to_day}T00:00:00Z`) + 24 * HOUR_MS}
                legend={[
                  { name: 'up', colour: '--ok' },
                  { name: 'degraded', colour: '--warn' },
                  { name: 'down', colour: '--bad' },
                  { name: 'breaker opened', colour: '--bad', shape: 'diamond' },
                  { name: 'breaker closed', colour: '--ok', shape: 'diamond' },
                ]}
                table={null}
              />
              <TableWrap label="MCP servers">
                <table className="stack-narrow" data-testid="mcp-servers">
                  <caption className="visually-hidden">MCP servers over the period</caption>
                  <thead>
                    <tr>
                      <th scope="col">Server</th>
                      <th scope="col" className="num">
                        Calls
                      </th>
                      <th scope="col" className="num">
                        Failed
                      </th>
                      <th scope="col" className="num">
                        Openings
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {h.servers.map((s) => (
                      <tr key={s.server}>
                        <th scope="row">{s.server}</th>
                        <td className="num" data-label="Calls">
                          {count(s.calls)}
                        </td>
                        <td className="num" data-label="Failed">
                          {percent(s.error_rate)}
                        </td>
                        <td className="num" data-label="Openings">
                          {count(s.breaker_openings)}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
              <h3>Circuit-breaker events</h3>
              {breakers.isError ? (
                <ErrorState error={breakers.error} what="breaker events" />
              ) : events.length === 0 ? (
                <p className="muted">
                  {breakers.isPending ? 'Loading breaker events…' : 'No breaker opened in this period.'}
                </p>
              ) : (
                <ul className="failures" data-testid="breaker-events">
                  {events
                    .slice(-10)
                    .reverse()
                    .map((e) => (
                      <li key={`${e.tenant_id}/${e.server}@${e.opened_at}`} className="failure">
                        <strong>{e.server}</strong> opened {dateTime(e.opened_at)} after {count(e.failures)} failed
                        calls
                        {e.closed_at ? `; closed ${dateTime(e.closed_at)} (${duration(e.open_ms)})` : '; still open'}
                      </li>
                    ))}
                </ul>
              )}
            </>
          );
        }}
      </Answer>
    </Panel>
  );
}

function ErrorRates({ period }: { period: Period }) {
  const query = { period, interval: 'day' as const };
  const rates = useQuery({
    queryKey: keys.analytics('error-rates', query),
    queryFn: () => data(api.GET('/api/v1/analytics/error-rates', { params: { query } })),
  });
  return (
    <Panel
      title="Error rates"
      id="error-rates"
      actions={
        <CsvDownload path={`/api/v1/analytics/error-rates?${toSearch(query)}`} filename="error-rates.csv" label="CSV" />
      }
    >
      <Answer answer={rates} what="error rates" empty={() => null}>
        {(r) => (
          <>
            <dl className="facts">
              <div>
                <dt>Tool calls failed</dt>
                <dd data-testid="tool-error-rate">{percent(r.totals.tool_error_rate)}</dd>
                <dd className="muted" data-testid="tool-failures">
                  {count(r.totals.tool_failures)} of {count(r.totals.tool_calls)} calls
                </dd>
              </div>
              <div>
                <dt>Webhook deliveries failed</dt>
                <dd data-testid="webhook-failure-rate">{percent(r.totals.webhook_failure_rate)}</dd>
                <dd className="muted" data-testid="webhook-failures">
                  {count(r.totals.webhook_failures)} of {count(r.totals.webhook_attempts)} attempts
                </dd>
              </div>
            </dl>
            <LineChart
              caption="Share of failed tool calls and failed webhook delivery attempts per UTC day"
              rowHeader="UTC day"
              labels={r.rows.map((row) => row.bucket)}
              series={[
                { name: 'Tool calls failed', values: r.rows.map((row) => row.tool_error_rate) },
                { name: 'Webhook deliveries failed', values: r.rows.map((row) => row.webhook_failure_rate) },
              ]}
              format={(v) => percent(v)}
            />
          </>
        )}
      </Answer>
    </Panel>
  );
}
