import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { Interval, Window } from './analytics.repository';

export interface HourCellRow {
  day_of_week: number;
  hour: number;
  calls: string;
  failures: string;
}

export interface ServerHourRow {
  server: string;
  hour: Date;
  calls: string;
  failures: string;
}

export interface BreakerEventRow {
  tenant_id: string;
  server: string;
  opened_at: Date;
  closed_at: Date | null;
  failures: string;
}

export interface ErrorRateRow {
  bucket: string;
  tool_calls: string;
  tool_failures: string;
  webhook_attempts: string;
  webhook_failures: string;
}

/** The MCP circuit-breaker rule (docs/alert.md): its default streak of failed calls that opens a breaker. */
const BREAKER_RULE = 'usage.mcp_breaker_open';

/**
 * Health analytics (docs/query.md "Health analytics"): tool calls by hour of the week, MCP servers per hour,
 * circuit-breaker openings and error rates per interval. Tool calls are read from the raw call rows of the
 * window (partitions by day, kept QUERY_MAX_RANGE_DAYS); webhook deliveries from the alert worker's attempts.
 */
@Injectable()
export class HealthRepository {
  constructor(private readonly db: DataSource) {}

  /** Tool calls per UTC day of the week (ISO: 1 Monday … 7 Sunday) and hour of the day. */
  async toolCallHours(window: Window): Promise<HourCellRow[]> {
    return this.db.query(
      `SELECT extract(isodow FROM time AT TIME ZONE 'UTC')::int AS day_of_week,
              extract(hour FROM time AT TIME ZONE 'UTC')::int AS hour,
              count(*)::text AS calls, count(*) FILTER (WHERE status <> 'ok')::text AS failures
         FROM tool_calls
        WHERE time >= $1 AND time < $2 AND ($3::text IS NULL OR tenant_id = $3)
        GROUP BY 1, 2
        ORDER BY 1, 2`,
      [window.from, window.to, window.tenantId],
    );
  }

  /** Calls and failed calls per MCP server and UTC hour (hours without a call are absent). */
  async serverHours(window: Window): Promise<ServerHourRow[]> {
    return this.db.query(
      `SELECT mcp_server AS server, date_trunc('hour', time) AS hour,
              count(*)::text AS calls, count(*) FILTER (WHERE status <> 'ok')::text AS failures
         FROM tool_calls
        WHERE time >= $1 AND time < $2 AND ($3::text IS NULL OR tenant_id = $3)
          AND mcp_server IS NOT NULL AND mcp_server <> ''
        GROUP BY 1, 2
        ORDER BY 1, 2`,
      [window.from, window.to, window.tenantId],
    );
  }

  /**
   * Circuit-breaker openings as the breaker rule observes them from the calls: a server's breaker opens at the
   * call completing a streak of `consecutive_errors` failed calls (the tenant's threshold of the rule, else
   * `defaultStreak`) and closes at the next successful call (null: still open at the end of the window).
   * Streaks are numbered by the successes before them. One ordered pass over the calls numbers them; only the
   * failed calls and the successes right after one (a streak's closing) are grouped, so the grouping is as small
   * as the failures, not as the calls (docs/benchmarks.md "Console load").
   */
  async breakerEvents(window: Window, defaultStreak: number): Promise<BreakerEventRow[]> {
    return this.db.query(
      `WITH calls AS (
         SELECT tenant_id, mcp_server AS server, time, status <> 'ok' AS failed,
                count(*) FILTER (WHERE status = 'ok') OVER w AS successes,
                lag(status <> 'ok') OVER w AS after_failure
           FROM tool_calls
          WHERE time >= $1 AND time < $2 AND ($3::text IS NULL OR tenant_id = $3)
            AND mcp_server IS NOT NULL AND mcp_server <> ''
         WINDOW w AS (PARTITION BY tenant_id, mcp_server ORDER BY time, event_id)),
       streaks AS (
         -- A failure belongs to the streak after its preceding successes; a success right after a failure
         -- counts itself, so it closes the streak numbered one less.
         SELECT tenant_id, server, CASE WHEN failed THEN successes ELSE successes - 1 END AS streak,
                array_agg(time ORDER BY time) FILTER (WHERE failed) AS failed_at,
                count(*) FILTER (WHERE failed) AS failures,
                min(time) FILTER (WHERE NOT failed) AS next_success
           FROM calls
          WHERE failed OR after_failure
          GROUP BY 1, 2, 3),
       thresholds AS (
         SELECT tenant_id, (params->>'consecutive_errors')::int AS streak
           FROM alert_thresholds
          WHERE rule = '${BREAKER_RULE}' AND params ? 'consecutive_errors')
       SELECT s.tenant_id, s.server, s.failed_at[COALESCE(t.streak, $4)] AS opened_at,
              s.next_success AS closed_at, s.failures::text AS failures
         FROM streaks s
         LEFT JOIN thresholds t ON t.tenant_id = s.tenant_id
        WHERE s.failures >= COALESCE(t.streak, $4)
        ORDER BY opened_at, s.tenant_id, s.server`,
      [window.from, window.to, window.tenantId, defaultStreak],
    );
  }

  /**
   * Per interval bucket: tool calls and failed ones (the daily rollups), and webhook delivery attempts and
   * failed ones (an attempt that ends in a retry or gives up), every bucket of the window present.
   */
  async errorRates(window: Window, interval: Interval): Promise<ErrorRateRow[]> {
    return this.db.query(
      `WITH buckets AS (
         SELECT DISTINCT date_trunc('${interval}', d)::date AS bucket
           FROM generate_series($1::date, $2::date, interval '1 day') AS d),
       tools AS (
         SELECT date_trunc('${interval}', day)::date AS bucket, sum(call_count) AS calls, sum(failure_count) AS failures
           FROM usage_daily
          WHERE day >= $1::date AND day <= $2::date AND kind = 'tool' AND ($5::text IS NULL OR tenant_id = $5)
          GROUP BY 1),
       webhooks AS (
         SELECT date_trunc('${interval}', (at AT TIME ZONE 'UTC')::date)::date AS bucket, count(*) AS attempts,
                count(*) FILTER (WHERE outcome <> 'sent') AS failures
           FROM alert_delivery_attempts
          WHERE channel = 'webhook' AND at >= $3 AND at < $4 AND ($5::text IS NULL OR tenant_id = $5)
          GROUP BY 1)
       SELECT b.bucket::text AS bucket,
              COALESCE(t.calls, 0)::text AS tool_calls, COALESCE(t.failures, 0)::text AS tool_failures,
              COALESCE(w.attempts, 0)::text AS webhook_attempts, COALESCE(w.failures, 0)::text AS webhook_failures
         FROM buckets b
         LEFT JOIN tools t ON t.bucket = b.bucket
         LEFT JOIN webhooks w ON w.bucket = b.bucket
        ORDER BY b.bucket`,
      [window.fromDay, window.toDay, window.from, window.to, window.tenantId],
    );
  }
}
