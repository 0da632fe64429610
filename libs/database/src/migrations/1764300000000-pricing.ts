import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Pricing (docs/query.md "Prices"): effective-dated model list prices, per-tenant overrides of the same shape,
 * the SQL twin of libs/domain pricing callCost() used by repricing, and the audit of every reprice.
 * Rates are integer micro-USD per 1M tokens. A null cached or reasoning rate means "the input / output
 * rate". effective_from is kept to whole milliseconds so JavaScript Dates (ingest's in-memory table)
 * and PostgreSQL (reprice) agree on which price was in effect at an event time.
 */
export class Pricing1764300000000 implements MigrationInterface {
  name = 'Pricing1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE model_prices (
        provider                        text NOT NULL,
        model                           text NOT NULL,
        effective_from                  timestamptz NOT NULL
          CHECK (effective_from = date_trunc('milliseconds', effective_from)),
        input_micros_per_million        bigint NOT NULL CHECK (input_micros_per_million >= 0),
        cached_input_micros_per_million bigint CHECK (cached_input_micros_per_million >= 0),
        output_micros_per_million       bigint NOT NULL CHECK (output_micros_per_million >= 0),
        reasoning_micros_per_million    bigint CHECK (reasoning_micros_per_million >= 0),
        note                            text,
        created_at                      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (provider, model, effective_from)
      );

      -- A tenant's negotiated rates. An override in effect beats every global price, whatever their dates.
      CREATE TABLE tenant_model_prices (
        tenant_id text NOT NULL REFERENCES tenants (tenant_id),
        LIKE model_prices INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
        PRIMARY KEY (tenant_id, provider, model, effective_from)
      );

      -- tokenCost() of libs/domain money.ts: half up to whole micros (numeric, so no bigint overflow).
      CREATE FUNCTION token_cost(tokens bigint, micros_per_million bigint) RETURNS bigint
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        AS $$ SELECT div(tokens::numeric * micros_per_million + 500000, 1000000)::bigint $$;

      -- callCost() of libs/domain pricing.ts; null when input_rate is null (no price).
      CREATE FUNCTION llm_call_cost(prompt bigint, completion bigint, cached bigint, reasoning bigint,
          input_rate bigint, cached_rate bigint, output_rate bigint, reasoning_rate bigint) RETURNS bigint
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT token_cost(prompt - LEAST(cached, prompt), input_rate)
                   + token_cost(LEAST(cached, prompt), COALESCE(cached_rate, input_rate))
                   + token_cost(completion - LEAST(reasoning, completion), output_rate)
                   + token_cost(LEAST(reasoning, completion), COALESCE(reasoning_rate, output_rate)) $$;

      -- One row per reprice: who, when, why, which calls (period [period_from, period_to), model and
      -- tenant or null for all), and the cost of those calls before and after.
      CREATE TABLE reprice_audit (
        id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        actor               text NOT NULL CHECK (actor <> ''),
        reason              text NOT NULL CHECK (reason <> ''),
        repriced_at         timestamptz NOT NULL DEFAULT now(),
        model               text,
        tenant_id           text,
        period_from         timestamptz NOT NULL,
        period_to           timestamptz NOT NULL,
        calls_considered    integer NOT NULL,
        calls_affected      integer NOT NULL,
        old_total_micros    bigint NOT NULL,
        new_total_micros    bigint NOT NULL,
        old_unpriced_calls  integer NOT NULL,
        new_unpriced_calls  integer NOT NULL,
        CHECK (period_from < period_to)
      );
      CREATE INDEX reprice_audit_repriced_at ON reprice_audit (repriced_at DESC);
    `);

    const rows = SEED.flatMap(([provider, ids, input, cached, output, from]) =>
      ids.split(' ').map((model) => [provider, model, from ?? SEED_EPOCH, `${input}`, `${cached}`, `${output}`]),
    );
    await q.query(
      `INSERT INTO model_prices (provider, model, effective_from, input_micros_per_million,
         cached_input_micros_per_million, output_micros_per_million, note)
       SELECT p, m, f, i, c, o, $7 FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[],
         $5::bigint[], $6::bigint[]) AS s(p, m, f, i, c, o)`,
      [
        rows.map((r) => r[0]),
        rows.map((r) => r[1]),
        rows.map((r) => r[2]),
        rows.map((r) => r[3]),
        rows.map((r) => r[4]),
        rows.map((r) => r[5]),
        SEED_NOTE,
      ],
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE reprice_audit, tenant_model_prices, model_prices`);
    await q.query(`DROP FUNCTION llm_call_cost(bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint);
      DROP FUNCTION token_cost(bigint, bigint)`);
  }
}

/**
 * Public list prices as of late November 2025 (standard tier, USD per 1M tokens written as micros), as the
 * providers' pricing pages gave them then; check them there before relying on them. Not modelled:
 * batch/flex/priority tiers, Anthropic cache writes (1.25x input), long-context surcharges (Claude Sonnet
 * and Gemini Pro above 200k prompt tokens). Reasoning tokens are billed as output by every provider
 * listed, so no reasoning rate is set. Prices apply from SEED_EPOCH so calls stored before this migration
 * price too; a list price that changed has one row per period (o3). Both the alias and the dated snapshot
 * ids are seeded, because producers report either (models match exactly, see libs/domain pricing.ts).
 */
const SEED_EPOCH = '2000-01-01T00:00:00Z';
const SEED_NOTE = 'list price as of 2025-11 (migration 1764300000000)';

/** provider, model ids (alias and dated snapshots), input, cached input, output, effective from. */
type SeedRow = [provider: string, ids: string, input: bigint, cached: bigint, output: bigint, from?: string];

const SEED: SeedRow[] = [
  ['openai', 'gpt-5.1', 1_250_000n, 125_000n, 10_000_000n],
  ['openai', 'gpt-5 gpt-5-2025-08-07', 1_250_000n, 125_000n, 10_000_000n],
  ['openai', 'gpt-5-mini gpt-5-mini-2025-08-07', 250_000n, 25_000n, 2_000_000n],
  ['openai', 'gpt-5-nano gpt-5-nano-2025-08-07', 50_000n, 5_000n, 400_000n],
  ['openai', 'gpt-4.1 gpt-4.1-2025-04-14', 2_000_000n, 500_000n, 8_000_000n],
  ['openai', 'gpt-4.1-mini gpt-4.1-mini-2025-04-14', 400_000n, 100_000n, 1_600_000n],
  ['openai', 'gpt-4.1-nano gpt-4.1-nano-2025-04-14', 100_000n, 25_000n, 400_000n],
  ['openai', 'gpt-4o gpt-4o-2024-08-06', 2_500_000n, 1_250_000n, 10_000_000n],
  ['openai', 'gpt-4o-mini gpt-4o-mini-2024-07-18', 150_000n, 75_000n, 600_000n],
  ['openai', 'o3 o3-2025-04-16', 10_000_000n, 2_500_000n, 40_000_000n],
  ['openai', 'o3 o3-2025-04-16', 2_000_000n, 500_000n, 8_000_000n, '2025-06-10T00:00:00Z'], // the o3 price cut
  ['openai', 'o3-mini o3-mini-2025-01-31', 1_100_000n, 550_000n, 4_400_000n],
  ['openai', 'o4-mini o4-mini-2025-04-16', 1_100_000n, 275_000n, 4_400_000n],
  ['openai', 'o1 o1-2024-12-17', 15_000_000n, 7_500_000n, 60_000_000n],
  ['anthropic', 'claude-opus-4-5 claude-opus-4-5-20251101', 5_000_000n, 500_000n, 25_000_000n],
  ['anthropic', 'claude-opus-4-1 claude-opus-4-1-20250805', 15_000_000n, 1_500_000n, 75_000_000n],
  ['anthropic', 'claude-opus-4-0 claude-opus-4-20250514', 15_000_000n, 1_500_000n, 75_000_000n],
  ['anthropic', 'claude-sonnet-4-5 claude-sonnet-4-5-20250929', 3_000_000n, 300_000n, 15_000_000n],
  ['anthropic', 'claude-sonnet-4 claude-sonnet-4-0 claude-sonnet-4-20250514', 3_000_000n, 300_000n, 15_000_000n],
  ['anthropic', 'claude-3-7-sonnet-latest claude-3-7-sonnet-20250219', 3_000_000n, 300_000n, 15_000_000n],
  ['anthropic', 'claude-haiku-4-5 claude-haiku-4-5-20251001', 1_000_000n, 100_000n, 5_000_000n],
  ['anthropic', 'claude-3-5-haiku claude-3-5-haiku-latest claude-3-5-haiku-20241022', 800_000n, 80_000n, 4_000_000n],
  ['google', 'gemini-3-pro-preview', 2_000_000n, 200_000n, 12_000_000n],
  ['google', 'gemini-2.5-pro', 1_250_000n, 125_000n, 10_000_000n],
  ['google', 'gemini-2.5-flash', 300_000n, 30_000n, 2_500_000n],
  ['google', 'gemini-2.5-flash-lite', 100_000n, 10_000n, 400_000n],
  ['google', 'gemini-2.0-flash', 100_000n, 25_000n, 400_000n],
];
