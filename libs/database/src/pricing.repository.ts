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
  /** The audit_log id of the API request that asked for this reprice (docs/query.md "Prices"). */
  requestId?: string;
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

export type PriceStatus = 'current' | 'scheduled' | 'superseded' | 'retired';

export interface PriceListFilter {
  now: Date;
  statuses: PriceStatus[];
  provider?: string;
  model?: string;
  /** Only this tenant's overrides; every list when absent. */
  tenantId?: string;
  /** Only this price. */
  id?: string;
  limit: number;
}

/** A price row as stored; rates are micro-USD per 1M tokens, as decimal strings. */
export interface PriceRecord {
  id: string;
  tenant_id: string | null;
  provider: string;
  model: string;
  effective_from: Date;
  retired_at: Date | null;
  note: string | null;
  created_at: Date;
  /** Set by listPricesOfAllTenants only. */
  status: PriceStatus | null;
  input: string;
  cached_input: string | null;
  output: string;
  reasoning: string | null;
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
  retired_at: Date | null;
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
      `SELECT NULL::text AS tenant_id, provider, model, effective_from, retired_at, ${RATES} FROM model_prices
       UNION ALL
       SELECT tenant_id, provider, model, effective_from, retired_at, ${RATES} FROM tenant_model_prices`,
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
      retiredAt: row.retired_at,
    }));
  }

  /**
   * Adds a price, or replaces the one with the same key (model, provider, effective_from and tenant for
   * an override). Calls already stored keep their cost until a reprice of their period.
   */
  async setPrice(price: ModelPrice, note?: string): Promise<void> {
    const values = priceValues(price, note ?? null);
    const update = `input_micros_per_million = EXCLUDED.input_micros_per_million,
      cached_input_micros_per_million = EXCLUDED.cached_input_micros_per_million,
      output_micros_per_million = EXCLUDED.output_micros_per_million,
      reasoning_micros_per_million = EXCLUDED.reasoning_micros_per_million,
      note = EXCLUDED.note, created_at = now()`;
    if (price.tenantId === null) {
      await this.db.query(
        `INSERT INTO model_prices (${PRICE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (provider, model, effective_from) DO UPDATE SET ${update}`,
        values,
      );
    } else {
      await this.db.query(
        `INSERT INTO tenant_model_prices (tenant_id, ${PRICE_COLUMNS}) VALUES ($9, $1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id, provider, model, effective_from) DO UPDATE SET ${update}`,
        [...values, price.tenantId],
      );
    }
  }

  /**
   * Every price row (global list prices and every tenant's overrides) with its status at `now`: 'current'
   * (the newest of its list that started and is not retired), 'scheduled' (starts later), 'superseded' (a
   * newer one of its list started) or 'retired'. Read by Admins through the query API.
   */
  async listPricesOfAllTenants(filter: PriceListFilter): Promise<PriceRecord[]> {
    return this.db.query(
      `WITH prices AS (
         SELECT id::text, NULL::text AS tenant_id, provider, model, effective_from, retired_at, note, created_at,
                ${RATES} FROM model_prices
         UNION ALL
         SELECT id::text, tenant_id, provider, model, effective_from, retired_at, note, created_at,
                ${RATES} FROM tenant_model_prices
       ), rated AS (
         SELECT *, CASE
                  WHEN retired_at IS NOT NULL AND retired_at <= $1 THEN 'retired'
                  WHEN effective_from > $1 THEN 'scheduled'
                  WHEN effective_from = max(effective_from) FILTER (WHERE effective_from <= $1)
                                          OVER (PARTITION BY tenant_id, provider, model) THEN 'current'
                  ELSE 'superseded' END AS status
           FROM prices
       )
       SELECT id, tenant_id, provider, model, effective_from, retired_at, note, created_at, status,
              input::text, cached_input::text, output::text, reasoning::text
         FROM rated
        WHERE status = ANY($2::text[]) AND ($3::text IS NULL OR provider = $3) AND ($4::text IS NULL OR model = $4)
          AND ($5::text IS NULL OR tenant_id = $5) AND ($7::text IS NULL OR id = $7)
        ORDER BY provider COLLATE "C", model COLLATE "C", tenant_id COLLATE "C" NULLS FIRST, effective_from DESC
        LIMIT $6`,
      [
        filter.now,
        filter.statuses,
        filter.provider ?? null,
        filter.model ?? null,
        filter.tenantId ?? null,
        filter.limit,
        filter.id ?? null,
      ],
    );
  }

  /** One price row by id (global or an override) with its status at `now`, or undefined. */
  async findPrice(id: string, now: Date): Promise<PriceRecord | undefined> {
    const [row] = await this.listPricesOfAllTenants({
      now,
      statuses: ['current', 'scheduled', 'superseded', 'retired'],
      id,
      limit: 1,
    });
    return row;
  }

  /**
   * Adds a price; never replaces one: undefined when a price with the same key (provider, model,
   * effective_from, and tenant for an override) exists. Calls already stored keep their cost until a
   * reprice of their period.
   */
  async addPrice(price: ModelPrice, note: string | null): Promise<PriceRecord | undefined> {
    const values = priceValues(price, note);
    const returning = `RETURNING id::text, tenant_id, provider, model, effective_from, retired_at, note, created_at,
      ${RATES_TEXT}`;
    const rows: PriceRecord[] =
      price.tenantId === null
        ? await this.db.query(
            `INSERT INTO model_prices (${PRICE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (provider, model, effective_from) DO NOTHING
             ${returning.replace('tenant_id', 'NULL::text AS tenant_id')}`,
            values,
          )
        : await this.db.query(
            `INSERT INTO tenant_model_prices (tenant_id, ${PRICE_COLUMNS}) VALUES ($9, $1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (tenant_id, provider, model, effective_from) DO NOTHING ${returning}`,
            [...values, price.tenantId],
          );
    return rows[0];
  }

  /** Retires a price that is not retired yet, as of `at`; undefined when there is no such price. */
  async retirePrice(id: string, at: Date): Promise<PriceRecord | undefined> {
    const returning = `RETURNING id::text, tenant_id, provider, model, effective_from, retired_at, note, created_at,
      ${RATES_TEXT}`;
    const update = (table: string, tenant: string) =>
      `UPDATE ${table} SET retired_at = $2 WHERE id = $1::uuid AND retired_at IS NULL
       ${returning.replace('tenant_id', tenant)}`;
    const [global] = (await this.db.query(update('model_prices', 'NULL::text AS tenant_id'), [
      id,
      at.toISOString(),
    ])) as [PriceRecord[], number];
    if (global[0]) return global[0];
    const [override] = (await this.db.query(update('tenant_model_prices', 'tenant_id'), [id, at.toISOString()])) as [
      PriceRecord[],
      number,
    ];
    return override[0];
  }

  /** The reprice started by an API request (its audit_log id), once it finished. */
  async repriceOfRequest(requestId: string): Promise<RepriceResult | undefined> {
    const rows: AuditRow[] = await this.db.query(
      `SELECT id::text, calls_considered, calls_affected, old_total_micros::text, new_total_micros::text,
              old_unpriced_calls, new_unpriced_calls
         FROM reprice_audit WHERE request_id = $1::bigint`,
      [requestId],
    );
    return rows[0] && resultOf(rows[0]);
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

    // The price in effect for each call: the tenant's newest override at the call's time unless retired by
    // then, else the newest global price unless retired (the rule of libs/domain pricing.ts PriceBook.priceAt).
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
               (SELECT 0 AS precedence, retired_at, ${RATES} FROM tenant_model_prices t
                 WHERE t.tenant_id = c.tenant_id AND t.provider = c.provider AND t.model = c.model
                   AND t.effective_from <= c.time
                 ORDER BY t.effective_from DESC LIMIT 1)
               UNION ALL
               (SELECT 1, retired_at, ${RATES} FROM model_prices g
                 WHERE g.provider = c.provider AND g.model = c.model AND g.effective_from <= c.time
                 ORDER BY g.effective_from DESC LIMIT 1)
             ) candidates
             WHERE retired_at IS NULL OR retired_at > c.time
             ORDER BY precedence
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
      `INSERT INTO reprice_audit (actor, reason, model, tenant_id, period_from, period_to, request_id,
         calls_considered, calls_affected, old_total_micros, new_total_micros, old_unpriced_calls,
         new_unpriced_calls)
       SELECT $1, $2, $3, $4, $5, $6, $7::bigint, count(*), count(*) FILTER (WHERE changed), COALESCE(sum(old_micros), 0),
              COALESCE(sum(new_micros), 0), count(*) FILTER (WHERE old_source = 'unpriced'),
              count(*) FILTER (WHERE new_source = 'unpriced')
         FROM repriced
       RETURNING id::text, calls_considered, calls_affected, old_total_micros::text, new_total_micros::text,
                 old_unpriced_calls, new_unpriced_calls`,
      [
        request.actor,
        request.reason,
        request.model ?? null,
        request.tenantId ?? null,
        from,
        to,
        request.requestId ?? null,
      ],
    )) as AuditRow[];
    if (!audit) throw new Error('reprice: audit row not written');
    return resultOf(audit);
  }
}

function resultOf(audit: AuditRow): RepriceResult {
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

const RATES_TEXT = `input_micros_per_million::text AS input, cached_input_micros_per_million::text AS cached_input,
  output_micros_per_million::text AS output, reasoning_micros_per_million::text AS reasoning`;

/** The columns of a price row ($1…$8 of priceValues; an override adds tenant_id as $9). */
const PRICE_COLUMNS = `provider, model, effective_from, input_micros_per_million, cached_input_micros_per_million,
  output_micros_per_million, reasoning_micros_per_million, note`;

function priceValues(price: ModelPrice, note: string | null): Array<string | null> {
  return [
    price.provider,
    price.model,
    price.effectiveFrom.toISOString(),
    price.inputPerMillion.toString(),
    price.cachedInputPerMillion?.toString() ?? null,
    price.outputPerMillion.toString(),
    price.reasoningPerMillion?.toString() ?? null,
    note,
  ];
}
