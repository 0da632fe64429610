import type { DataSource, EntityManager } from 'typeorm';
import type { Micros, ModelPrice } from '@agentmeter/domain';

export interface RepriceRequest {
  actor: string;
  reason: string;
  /** Calls with from <= time < to. */
  from: Date;
  to: Date;
  /** Only this model (any provider); every model when absent. */
  model?: string;
  /** Only this tenant; every tenant when absent. */
  tenantId?: string;
}

export interface RepriceResult {
  auditId: string;
  /** Calls in scope whose cost is computed or unpriced (provided costs are never repriced). */
  callsConsidered: number;
  /** Calls whose cost or cost source changed. */
  callsAffected: number;
  oldTotalMicros: Micros;
  newTotalMicros: Micros;
  oldUnpricedCalls: number;
  newUnpricedCalls: number;
}

const REPRICE_LOCK = 7_340_002; // pg_advisory_xact_lock key: one reprice at a time

interface PriceRow {
  tenant_id: string | null;
  provider: string;
  model: string;
  effective_from: Date;
  input: string;
  cached_input: string | null;
  output: string;
  reasoning: string | null;
}

/**
 * Model prices and repricing. The price table is small (models x price changes) and read whole by every
 * ingest replica; overrides of every tenant come with it, hence the method names.
 */
export class PricingRepository {
  constructor(private readonly db: DataSource) {}

  /** Every global list price and every tenant's overrides. */
  async loadPricesOfAllTenants(): Promise<ModelPrice[]> {
    const rows: PriceRow[] = await this.db.query(
      `SELECT NULL::text AS tenant_id, provider, model, effective_from, ${RATES} FROM model_prices
       UNION ALL
       SELECT tenant_id, provider, model, effective_from, ${RATES} FROM tenant_model_prices`,
    );
    return rows.map((row) => ({
      provider: row.provider,
      model: row.model,
      tenantId: row.tenant_id,
      effectiveFrom: row.effective_from,
      inputPerMillion: BigInt(row.input),
      cachedInputPerMillion: row.cached_input === null ? null : BigInt(row.cached_input),
      outputPerMillion: BigInt(row.output),
      reasoningPerMillion: row.reasoning === null ? null : BigInt(row.reasoning),
    }));
  }

  /**
   * Adds a price, or replaces the one with the same key (model, provider, effective_from and tenant for
   * an override). Calls already stored keep their cost until a reprice of their period.
   */
  async setPrice(price: ModelPrice, note?: string): Promise<void> {
    const values = [
      price.provider,
      price.model,
      price.effectiveFrom.toISOString(),
      price.inputPerMillion.toString(),
      price.cachedInputPerMillion?.toString() ?? null,
      price.outputPerMillion.toString(),
      price.reasoningPerMillion?.toString() ?? null,
      note ?? null,
    ];
    const columns = `provider, model, effective_from, input_micros_per_million, cached_input_micros_per_million,
      output_micros_per_million, reasoning_micros_per_million, note`;
    const update = `input_micros_per_million = EXCLUDED.input_micros_per_million,
      cached_input_micros_per_million = EXCLUDED.cached_input_micros_per_million,
      output_micros_per_million = EXCLUDED.output_micros_per_million,
      reasoning_micros_per_million = EXCLUDED.reasoning_micros_per_million,
      note = EXCLUDED.note, created_at = now()`;
    if (price.tenantId === null) {
      await this.db.query(
        `INSERT INTO model_prices (${columns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (provider, model, effective_from) DO UPDATE SET ${update}`,
        values,
      );
    } else {
      await this.db.query(
        `INSERT INTO tenant_model_prices (tenant_id, ${columns}) VALUES ($9, $1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id, provider, model, effective_from) DO UPDATE SET ${update}`,
        [...values, price.tenantId],
      );
    }
  }

  /**
   * Recomputes, with the prices stored now, the cost of every computed or unpriced call in the scope
   * (provided costs are the producer's and never change), and moves the call rows, stages, runs and daily
   * usage rollups (usage_daily and its per-model sums, usage_model_daily) by the difference, with an audit
   * row, in one transaction.
   *
   * Deltas rather than recomputation, because the rollups also hold calls whose raw rows retention has
   * already dropped. Rows are locked runs -> stages -> usage_daily -> usage_model_daily, each in key
   * order, the order ingest writes them in, so a reprice and an ingest batch wait for each other instead of deadlocking.
   * usage_monthly is not touched: raw calls are kept for less time than daily rollups, so a call that
   * can be repriced still has its daily row.
   */
  async reprice(request: RepriceRequest): Promise<RepriceResult> {
    if (!request.actor.trim()) throw new Error('reprice: actor is required');
    if (!request.reason.trim()) throw new Error('reprice: reason is required');
    if (!(request.from.getTime() < request.to.getTime())) throw new Error('reprice: from must be before to');
    return this.db.transaction((tx) => this.repriceIn(tx, request));
  }

  private async repriceIn(tx: EntityManager, request: RepriceRequest): Promise<RepriceResult> {
    const from = request.from.toISOString();
    const to = request.to.toISOString();
    await tx.query('SELECT pg_advisory_xact_lock($1)', [REPRICE_LOCK]);

    // The price in effect for each call: the tenant's newest override at the call's time, else the newest
    // global price (the rule of libs/domain pricing.ts PriceBook.priceAt).
    await tx.query(
      `CREATE TEMPORARY TABLE repriced ON COMMIT DROP AS
       WITH priced AS (
         SELECT c.source, c.event_id, c.time, c.tenant_id, c.project_id, c.run_id, c.phase, c.attempt, c.role,
                c.model, c.provider, COALESCE(c.user_id, '') AS user_id, (c.time AT TIME ZONE 'UTC')::date AS day,
                c.cost_micros AS old_micros, c.cost_source AS old_source,
                llm_call_cost(c.prompt_tokens, c.completion_tokens, c.cached_tokens, c.reasoning_tokens,
                  p.input, p.cached_input, p.output, p.reasoning) AS new_micros
           FROM llm_calls c
           LEFT JOIN LATERAL (
             SELECT input, cached_input, output, reasoning FROM (
               SELECT 0 AS precedence, effective_from, ${RATES} FROM tenant_model_prices t
                WHERE t.tenant_id = c.tenant_id AND t.provider = c.provider AND t.model = c.model
                  AND t.effective_from <= c.time
               UNION ALL
               SELECT 1, effective_from, ${RATES} FROM model_prices g
                WHERE g.provider = c.provider AND g.model = c.model AND g.effective_from <= c.time
             ) candidates
             ORDER BY precedence, effective_from DESC
             LIMIT 1
           ) p ON true
          WHERE c.time >= $1 AND c.time < $2
            AND c.cost_source IN ('computed', 'unpriced')
            AND ($3::text IS NULL OR c.model = $3)
            AND ($4::text IS NULL OR c.tenant_id = $4)
       ), sourced AS (
         SELECT *, CASE WHEN new_micros IS NULL THEN 'unpriced' ELSE 'computed' END AS new_source FROM priced
       )
       SELECT *,
              COALESCE(new_micros, 0) - COALESCE(old_micros, 0) AS delta,
              (new_source = 'unpriced')::int - (old_source = 'unpriced')::int AS unpriced_delta,
              (old_micros IS DISTINCT FROM new_micros OR old_source <> new_source) AS changed
         FROM sourced`,
      [from, to, request.model ?? null, request.tenantId ?? null],
    );

    await tx.query(
      `UPDATE llm_calls c SET cost_micros = r.new_micros, cost_source = r.new_source
         FROM repriced r
        WHERE r.changed AND c.source = r.source AND c.event_id = r.event_id AND c.time = r.time
          AND c.time >= $1 AND c.time < $2`,
      [from, to],
    );

    await tx.query(
      `SELECT 1 FROM runs WHERE (tenant_id, run_id) IN (SELECT tenant_id, run_id FROM repriced WHERE changed)
        ORDER BY tenant_id COLLATE "C", run_id COLLATE "C" FOR UPDATE`,
    );
    await tx.query(
      `UPDATE runs r SET cost_micros = r.cost_micros + d.delta, unpriced_calls = r.unpriced_calls + d.unpriced_delta,
              updated_at = now()
         FROM (SELECT tenant_id, run_id, sum(delta) AS delta, sum(unpriced_delta) AS unpriced_delta
                 FROM repriced WHERE changed GROUP BY tenant_id, run_id) d
        WHERE r.tenant_id = d.tenant_id AND r.run_id = d.run_id`,
    );

    await tx.query(
      `SELECT 1 FROM stages WHERE (tenant_id, run_id, phase, attempt) IN
         (SELECT tenant_id, run_id, phase, attempt FROM repriced WHERE changed)
        ORDER BY tenant_id COLLATE "C", run_id COLLATE "C", phase COLLATE "C", attempt FOR UPDATE`,
    );
    await tx.query(
      `UPDATE stages s SET cost_micros = s.cost_micros + d.delta, updated_at = now()
         FROM (SELECT tenant_id, run_id, phase, attempt, sum(delta) AS delta
                 FROM repriced WHERE changed GROUP BY tenant_id, run_id, phase, attempt) d
        WHERE s.tenant_id = d.tenant_id AND s.run_id = d.run_id AND s.phase = d.phase AND s.attempt = d.attempt`,
    );

    // usage_daily keys of llm calls: kind 'llm', no tool or MCP server (libs/domain usage-rollup.ts).
    const usageKey = `day, tenant_id, project_id, role, model, provider, user_id`;
    await tx.query(
      `SELECT 1 FROM usage_daily
        WHERE kind = 'llm' AND tool = '' AND mcp_server = ''
          AND (${usageKey}) IN (SELECT ${usageKey} FROM repriced WHERE changed)
        ORDER BY day, tenant_id COLLATE "C", project_id COLLATE "C", role COLLATE "C", kind COLLATE "C",
                 model COLLATE "C", provider COLLATE "C", tool COLLATE "C", mcp_server COLLATE "C",
                 user_id COLLATE "C"
        FOR UPDATE`,
    );
    await tx.query(
      `UPDATE usage_daily u SET cost_micros = u.cost_micros + d.delta, unpriced_calls = u.unpriced_calls + d.unpriced_delta
         FROM (SELECT ${usageKey}, sum(delta) AS delta, sum(unpriced_delta) AS unpriced_delta
                 FROM repriced WHERE changed GROUP BY ${usageKey}) d
        WHERE u.kind = 'llm' AND u.tool = '' AND u.mcp_server = '' AND u.day = d.day AND u.tenant_id = d.tenant_id
          AND u.project_id = d.project_id AND u.role = d.role AND u.model = d.model AND u.provider = d.provider
          AND u.user_id = d.user_id`,
    );

    // usage_model_daily, the same llm rows summed per day, tenant, model and provider, moves by the same deltas.
    const modelKey = `day, tenant_id, model, provider`;
    await tx.query(
      `SELECT 1 FROM usage_model_daily
        WHERE (${modelKey}) IN (SELECT ${modelKey} FROM repriced WHERE changed)
        ORDER BY day, tenant_id COLLATE "C", model COLLATE "C", provider COLLATE "C"
        FOR UPDATE`,
    );
    await tx.query(
      `UPDATE usage_model_daily u SET cost_micros = u.cost_micros + d.delta,
              unpriced_calls = u.unpriced_calls + d.unpriced_delta
         FROM (SELECT ${modelKey}, sum(delta) AS delta, sum(unpriced_delta) AS unpriced_delta
                 FROM repriced WHERE changed GROUP BY ${modelKey}) d
        WHERE u.day = d.day AND u.tenant_id = d.tenant_id AND u.model = d.model AND u.provider = d.provider`,
    );

    const [audit] = (await tx.query(
      `INSERT INTO reprice_audit (actor, reason, model, tenant_id, period_from, period_to, calls_considered,
         calls_affected, old_total_micros, new_total_micros, old_unpriced_calls, new_unpriced_calls)
       SELECT $1, $2, $3, $4, $5, $6, count(*), count(*) FILTER (WHERE changed), COALESCE(sum(old_micros), 0),
              COALESCE(sum(new_micros), 0), count(*) FILTER (WHERE old_source = 'unpriced'),
              count(*) FILTER (WHERE new_source = 'unpriced')
         FROM repriced
       RETURNING id::text, calls_considered, calls_affected, old_total_micros::text, new_total_micros::text,
                 old_unpriced_calls, new_unpriced_calls`,
      [request.actor, request.reason, request.model ?? null, request.tenantId ?? null, from, to],
    )) as AuditRow[];
    if (!audit) throw new Error('reprice: audit row not written');
    return {
      auditId: audit.id,
      callsConsidered: audit.calls_considered,
      callsAffected: audit.calls_affected,
      oldTotalMicros: BigInt(audit.old_total_micros),
      newTotalMicros: BigInt(audit.new_total_micros),
      oldUnpricedCalls: audit.old_unpriced_calls,
      newUnpricedCalls: audit.new_unpriced_calls,
    };
  }
}

interface AuditRow {
  id: string;
  calls_considered: number;
  calls_affected: number;
  old_total_micros: string;
  new_total_micros: string;
  old_unpriced_calls: number;
  new_unpriced_calls: number;
}

const RATES = `input_micros_per_million AS input, cached_input_micros_per_million AS cached_input,
  output_micros_per_million AS output, reasoning_micros_per_million AS reasoning`;
