import { Injectable } from '@nestjs/common';
import { AlertRules, AlertThresholdSchemas } from '@agentmeter/contracts';
import { Clock, share } from '@agentmeter/domain';
import { type Caller, tenantOf } from '../auth/caller';
import { Limits } from '../http/limits';
import type { Window } from './analytics.repository';
import { HealthRepository } from './health.repository';
import type {
  BreakerEventsAnswer,
  ErrorRatesAnswer,
  ErrorRatesQuery,
  HealthQuery,
  McpHealthAnswer,
  ToolCallHoursAnswer,
} from './health.schemas';

/** The breaker rule's default streak, from its threshold schema (a tenant's override is read with the calls). */
const DEFAULT_STREAK = AlertThresholdSchemas[AlertRules.McpBreakerOpen].parse({}).consecutive_errors;

/**
 * Health analytics for the console's charts (docs/query.md "Health analytics"): every figure aggregated here,
 * so the browser draws what it gets. One tenant, or (Admin) all of them.
 */
@Injectable()
export class HealthService {
  constructor(
    private readonly repository: HealthRepository,
    private readonly limits: Limits,
    private readonly clock: Clock,
  ) {}

  async toolCallHours(caller: Caller, query: HealthQuery): Promise<ToolCallHoursAnswer> {
    const { window, period } = this.windowOf(caller, query);
    const rows = (await this.repository.toolCallHours(window)).map((r) => ({
      day_of_week: r.day_of_week,
      hour: r.hour,
      ...figures(r),
    }));
    const calls = rows.reduce((sum, r) => sum + r.calls, 0);
    const failures = rows.reduce((sum, r) => sum + r.failures, 0);
    return {
      period,
      tenant_id: window.tenantId,
      time_zone: 'UTC',
      rows,
      totals: { calls, failures, error_rate: share(failures, calls) },
    };
  }

  async mcpHealth(caller: Caller, query: HealthQuery): Promise<McpHealthAnswer> {
    const { window, period } = this.windowOf(caller, query);
    const [hours, events] = await Promise.all([
      this.repository.serverHours(window),
      this.repository.breakerEvents(window, DEFAULT_STREAK),
    ]);
    const servers = new Map<string, { calls: number; failures: number; openings: number }>();
    const rows = hours.map((row) => {
      const f = figures(row);
      const server = servers.get(row.server) ?? { calls: 0, failures: 0, openings: 0 };
      server.calls += f.calls;
      server.failures += f.failures;
      servers.set(row.server, server);
      const state = f.failures === 0 ? 'up' : f.failures === f.calls ? 'down' : 'degraded';
      return { server: row.server, hour: row.hour.toISOString(), ...f, state } as const;
    });
    for (const event of events) {
      const server = servers.get(event.server);
      if (server) server.openings += 1;
    }
    return {
      period,
      tenant_id: window.tenantId,
      rows,
      servers: [...servers].map(([server, s]) => ({
        server,
        calls: s.calls,
        failures: s.failures,
        error_rate: share(s.failures, s.calls),
        breaker_openings: s.openings,
      })),
    };
  }

  async breakerEvents(caller: Caller, query: HealthQuery): Promise<BreakerEventsAnswer> {
    const { window, period } = this.windowOf(caller, query);
    const events = await this.repository.breakerEvents(window, DEFAULT_STREAK);
    return {
      period,
      tenant_id: window.tenantId,
      default_consecutive_errors: DEFAULT_STREAK,
      rows: events.map((e) => ({
        tenant_id: e.tenant_id,
        server: e.server,
        opened_at: e.opened_at.toISOString(),
        closed_at: e.closed_at ? e.closed_at.toISOString() : null,
        open_ms: e.closed_at ? e.closed_at.getTime() - e.opened_at.getTime() : null,
        failures: Number(e.failures),
      })),
    };
  }

  async errorRates(caller: Caller, query: ErrorRatesQuery): Promise<ErrorRatesAnswer> {
    const { window, period } = this.windowOf(caller, query);
    const rows = (await this.repository.errorRates(window, query.interval)).map((r) => {
      const tool_calls = Number(r.tool_calls);
      const tool_failures = Number(r.tool_failures);
      const webhook_attempts = Number(r.webhook_attempts);
      const webhook_failures = Number(r.webhook_failures);
      return {
        bucket: r.bucket,
        tool_calls,
        tool_failures,
        tool_error_rate: share(tool_failures, tool_calls),
        webhook_attempts,
        webhook_failures,
        webhook_failure_rate: share(webhook_failures, webhook_attempts),
      };
    });
    const sum = (field: 'tool_calls' | 'tool_failures' | 'webhook_attempts' | 'webhook_failures') =>
      rows.reduce((total, r) => total + r[field], 0);
    return {
      period,
      tenant_id: window.tenantId,
      interval: query.interval,
      rows,
      totals: {
        tool_calls: sum('tool_calls'),
        tool_failures: sum('tool_failures'),
        tool_error_rate: share(sum('tool_failures'), sum('tool_calls')),
        webhook_attempts: sum('webhook_attempts'),
        webhook_failures: sum('webhook_failures'),
        webhook_failure_rate: share(sum('webhook_failures'), sum('webhook_attempts')),
      },
    };
  }

  private windowOf(caller: Caller, query: HealthQuery) {
    const { range, days } = this.limits.rawAggregateRange(query, this.clock.now());
    const window: Window = { tenantId: tenantOf(caller, query.tenant_id), ...range };
    return { window, period: { from_day: range.fromDay, to_day: range.toDay, days } };
  }
}

/** Counts from SQL (bigint as text) with their failure share. */
function figures(row: { calls: string; failures: string }) {
  const calls = Number(row.calls);
  const failures = Number(row.failures);
  return { calls, failures, error_rate: share(failures, calls) };
}
