import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { CallCounts, DeliveryFailures, DriftSample, OpenProof, RunningPhase } from '@agentmeter/domain';

/** Per-tenant windows: tenants with an override, in minutes; every other tenant uses the default. */
export interface TenantWindows {
  defaultMinutes: number;
  overrides: ReadonlyArray<[tenantId: string, minutes: number]>;
}

/**
 * The facts time-based rules evaluate, read from ingest's tables (runs, events, llm_calls, tool_calls,
 * usage_model_daily) and the alert tables. Every read spans all tenants, hence the names.
 */
@Injectable()
export class RulesRepository {
  constructor(private readonly db: DataSource) {}

  async runningPhasesOfAllTenants(enteredBefore: Date): Promise<RunningPhase[]> {
    const rows: Array<{ tenant_id: string; run_id: string; phase: string; role: string | null; phase_at: Date }> =
      await this.db.query(
        `SELECT tenant_id, run_id, phase, role, phase_at FROM runs
          WHERE status = 'running' AND phase IS NOT NULL AND phase_at <= $1`,
        [enteredBefore.toISOString()],
      );
    return rows.map((r) => ({
      tenantId: r.tenant_id,
      runId: r.run_id,
      phase: r.phase,
      role: r.role,
      since: r.phase_at,
    }));
  }

  /** proof_due events (of the last `since`) past their due time with no proof_completed for the proof. */
  async openProofsOfAllTenants(dueBefore: Date, since: Date): Promise<OpenProof[]> {
    const rows: Array<{ tenant_id: string; run_id: string; proof_id: string; due_at: Date }> = await this.db.query(
      `SELECT DISTINCT ON (d.tenant_id, d.run_id, d.payload->>'proof_id')
              d.tenant_id, d.run_id, d.payload->>'proof_id' AS proof_id, (d.payload->>'due_at')::timestamptz AS due_at
         FROM events d
        WHERE d.type = 'proof_due' AND d.time >= $2 AND (d.payload->>'due_at')::timestamptz <= $1
          AND NOT EXISTS (
            SELECT 1 FROM events c
             WHERE c.type = 'proof_completed' AND c.tenant_id = d.tenant_id AND c.run_id = d.run_id
               AND c.time >= $2 AND c.payload->>'proof_id' = d.payload->>'proof_id')
        ORDER BY d.tenant_id, d.run_id, d.payload->>'proof_id', d.time DESC`,
      [dueBefore.toISOString(), since.toISOString()],
    );
    return rows.map((r) => ({ tenantId: r.tenant_id, runId: r.run_id, proofId: r.proof_id, dueAt: r.due_at }));
  }

  async modelCallCounts(since: Date, now: Date): Promise<Array<CallCounts & { model: string; provider: string }>> {
    const rows: Array<{ model: string; provider: string; calls: string; errors: string }> = await this.db.query(
      `SELECT model, provider, count(*) AS calls, count(*) FILTER (WHERE status <> 'ok') AS errors
         FROM llm_calls WHERE time > $1 AND time <= $2 GROUP BY model, provider`,
      [since.toISOString(), now.toISOString()],
    );
    return rows.map((r) => ({
      model: r.model,
      provider: r.provider,
      calls: Number(r.calls),
      errors: Number(r.errors),
    }));
  }

  async toolCallCountsOfAllTenants(
    windows: TenantWindows,
    now: Date,
  ): Promise<Array<CallCounts & { tenantId: string; tool: string }>> {
    const rows: Array<{ tenant_id: string; tool: string; calls: string; errors: string }> = await this.db.query(
      `WITH o AS (SELECT * FROM unnest($2::text[], $3::int[]) AS o(tenant_id, minutes))
       SELECT c.tenant_id, c.tool, count(*) AS calls, count(*) FILTER (WHERE c.status <> 'ok') AS errors
         FROM tool_calls c LEFT JOIN o ON o.tenant_id = c.tenant_id
        WHERE c.time > $1::timestamptz - make_interval(mins => $5) AND c.time <= $1
          AND c.time > $1::timestamptz - make_interval(mins => COALESCE(o.minutes, $4))
        GROUP BY c.tenant_id, c.tool`,
      windowParams(windows, now),
    );
    return rows.map((r) => ({ tenantId: r.tenant_id, tool: r.tool, calls: Number(r.calls), errors: Number(r.errors) }));
  }

  /** The statuses of the latest `limit` calls per tenant and MCP server within each tenant's window, newest first. */
  async mcpLatestStatusesOfAllTenants(
    windows: TenantWindows,
    limit: number,
    now: Date,
  ): Promise<Array<{ tenantId: string; server: string; latest: Array<'ok' | 'error'> }>> {
    const rows: Array<{ tenant_id: string; server: string; latest: Array<'ok' | 'error'> }> = await this.db.query(
      `WITH o AS (SELECT * FROM unnest($2::text[], $3::int[]) AS o(tenant_id, minutes)),
       ranked AS (
         SELECT c.tenant_id, c.mcp_server, c.status, c.time,
                row_number() OVER (PARTITION BY c.tenant_id, c.mcp_server ORDER BY c.time DESC, c.event_id DESC) AS rn
           FROM tool_calls c LEFT JOIN o ON o.tenant_id = c.tenant_id
          WHERE c.mcp_server IS NOT NULL AND c.mcp_server <> ''
            AND c.time > $1::timestamptz - make_interval(mins => $5) AND c.time <= $1
            AND c.time > $1::timestamptz - make_interval(mins => COALESCE(o.minutes, $4)))
       SELECT tenant_id, mcp_server AS server, array_agg(status ORDER BY rn) AS latest
         FROM ranked WHERE rn <= $6 GROUP BY tenant_id, mcp_server`,
      [...windowParams(windows, now), limit],
    );
    return rows.map((r) => ({ tenantId: r.tenant_id, server: r.server, latest: r.latest }));
  }

  async dailyTokensOfAllTenants(day: string): Promise<Array<{ tenantId: string; tokens: bigint }>> {
    const rows: Array<{ tenant_id: string; tokens: string }> = await this.db.query(
      // The per-model rollup: the same sums as usage_daily's llm rows, a handful of rows per tenant-day.
      `SELECT tenant_id, sum(input_tokens + output_tokens)::text AS tokens
         FROM usage_model_daily WHERE day = $1::date GROUP BY tenant_id`,
      [day],
    );
    return rows.map((r) => ({ tenantId: r.tenant_id, tokens: BigInt(r.tokens) }));
  }

  /**
   * p95 wait (dequeue time - enqueued_at, seconds) of task_dequeued events per queue and bucket; bucket 0
   * is the most recent `bucketSeconds` before `now`.
   */
  async queueLatencyBuckets(
    now: Date,
    bucketSeconds: number,
    buckets: number,
  ): Promise<Array<{ queue: string; buckets: Map<number, number> }>> {
    const rows: Array<{ queue: string; bucket: number; p95: number }> = await this.db.query(
      `SELECT payload->>'queue' AS queue,
              floor(extract(epoch FROM ($1::timestamptz - time)) / $2)::int AS bucket,
              percentile_disc(0.95) WITHIN GROUP (
                ORDER BY extract(epoch FROM (time - (payload->>'enqueued_at')::timestamptz)))::float8 AS p95
         FROM events
        WHERE type = 'task_dequeued' AND time <= $1 AND time > $1::timestamptz - make_interval(secs => $2 * $3)
        GROUP BY 1, 2`,
      [now.toISOString(), bucketSeconds, buckets],
    );
    const byQueue = new Map<string, Map<number, number>>();
    for (const row of rows) {
      if (row.bucket < 0 || row.bucket >= buckets) continue;
      let map = byQueue.get(row.queue);
      if (!map) byQueue.set(row.queue, (map = new Map()));
      map.set(row.bucket, row.p95);
    }
    return [...byQueue.entries()].map(([queue, map]) => ({ queue, buckets: map }));
  }

  /** Dead-lettered deliveries per contact since `since`, and whether one succeeded after the last of them. */
  async deliveryFailuresOfAllTenants(since: Date): Promise<DeliveryFailures[]> {
    const rows: Array<{
      tenant_id: string;
      contact_id: string;
      channel: string;
      failures: number;
      recovered: boolean;
    }> = await this.db.query(
      `SELECT COALESCE(c.tenant_id, '*') AS tenant_id, d.contact_id::text AS contact_id, d.channel,
                count(*) FILTER (WHERE d.status = 'dead' AND d.dead_at >= $1)::int AS failures,
                COALESCE(max(d.sent_at) > max(d.dead_at), false) AS recovered
           FROM alert_deliveries d JOIN alert_contacts c ON c.id = d.contact_id
          WHERE c.deleted_at IS NULL AND (d.dead_at >= $1 OR d.sent_at >= $1)
          GROUP BY 1, 2, 3
         HAVING count(*) FILTER (WHERE d.status = 'dead' AND d.dead_at >= $1) > 0`,
      [since.toISOString()],
    );
    return rows.map((r) => ({
      tenantId: r.tenant_id,
      contactId: r.contact_id,
      channel: r.channel,
      failures: r.failures,
      recovered: r.recovered,
    }));
  }

  /** Implementer output length (completion tokens per call) and structure (artifacts per phase attempt). */
  async implementerDriftOfAllTenants(baselineFrom: Date, recentFrom: Date, now: Date): Promise<DriftSample[]> {
    const args = [baselineFrom.toISOString(), recentFrom.toISOString(), now.toISOString()];
    const length: Array<{ tenant_id: string; rm: number | null; rn: number; bm: number | null; bn: number }> =
      await this.db.query(
        `SELECT tenant_id,
                avg(completion_tokens) FILTER (WHERE time > $2)::float8 AS rm, count(*) FILTER (WHERE time > $2)::int AS rn,
                avg(completion_tokens) FILTER (WHERE time <= $2)::float8 AS bm, count(*) FILTER (WHERE time <= $2)::int AS bn
           FROM llm_calls
          WHERE role = 'implementer' AND status = 'ok' AND time > $1 AND time <= $3
          GROUP BY tenant_id`,
        args,
      );
    const structure: Array<{ tenant_id: string; rm: number | null; rn: number; bm: number | null; bn: number }> =
      await this.db.query(
        `WITH s AS (
           SELECT tenant_id, run_id, phase, attempt, started_at FROM stages
            WHERE role = 'implementer' AND status <> 'running' AND started_at > $1 AND started_at <= $3),
         a AS (
           SELECT tenant_id, run_id, payload->>'phase' AS phase, (payload->>'attempt')::int AS attempt, count(*) AS n
             FROM events
            WHERE type = 'artifact_written' AND payload->>'role' = 'implementer' AND time > $1 AND time <= $3
            GROUP BY 1, 2, 3, 4)
         SELECT s.tenant_id,
                avg(COALESCE(a.n, 0)) FILTER (WHERE s.started_at > $2)::float8 AS rm,
                count(*) FILTER (WHERE s.started_at > $2)::int AS rn,
                avg(COALESCE(a.n, 0)) FILTER (WHERE s.started_at <= $2)::float8 AS bm,
                count(*) FILTER (WHERE s.started_at <= $2)::int AS bn
           FROM s LEFT JOIN a USING (tenant_id, run_id, phase, attempt)
          GROUP BY s.tenant_id`,
        args,
      );
    const sample = (measure: DriftSample['measure']) => (r: (typeof length)[number]) => ({
      tenantId: r.tenant_id,
      measure,
      recentMean: r.rm ?? 0,
      recentSamples: r.rn,
      baselineMean: r.bm ?? 0,
      baselineSamples: r.bn,
    });
    return [...length.map(sample('length')), ...structure.map(sample('structure'))];
  }
}

function windowParams(windows: TenantWindows, now: Date): [string, string[], number[], number, number] {
  const max = Math.max(windows.defaultMinutes, ...windows.overrides.map(([, minutes]) => minutes));
  return [
    now.toISOString(),
    windows.overrides.map(([tenant]) => tenant),
    windows.overrides.map(([, minutes]) => minutes),
    windows.defaultMinutes,
    max,
  ];
}
