import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Ingest's full projection set (docs/decisions.md "Projections converge regardless of order"):
 * - the raw tables (events, llm_calls, tool_calls, external_charges) become partitioned by day on event
 *   time, so retention drops whole partitions; their keys include `time` (a partitioned table's unique
 *   keys must), which is sound because a redelivered event carries its original time;
 * - failures, human interventions and impersonation sessions;
 * - usage_daily / usage_monthly rollups (usage statistics, docs/query.md "Endpoints") with latency histograms for p95.
 */
export class IngestProjections1764200000000 implements MigrationInterface {
  name = 'IngestProjections1764200000000';

  async up(q: QueryRunner): Promise<void> {
    for (const table of ['events', 'llm_calls', 'tool_calls']) {
      await q.query(`ALTER TABLE ${table} RENAME TO ${table}_unpartitioned`);
      await q.query(`ALTER INDEX ${table}_pkey RENAME TO ${table}_unpartitioned_pkey`);
    }
    await q.query(
      `DROP INDEX events_run_time; DROP INDEX llm_calls_run; DROP INDEX llm_calls_tenant_time; DROP INDEX tool_calls_run;`,
    );

    await q.query(`
      CREATE TABLE events (LIKE events_unpartitioned INCLUDING DEFAULTS, PRIMARY KEY (source, event_id, time))
        PARTITION BY RANGE (time);
      CREATE INDEX events_run_time ON events (tenant_id, run_id, time);

      CREATE TABLE llm_calls (LIKE llm_calls_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
        PRIMARY KEY (source, event_id, time)) PARTITION BY RANGE (time);
      CREATE INDEX llm_calls_run ON llm_calls (tenant_id, run_id);
      CREATE INDEX llm_calls_tenant_time ON llm_calls (tenant_id, time);
      CREATE INDEX llm_calls_model_time ON llm_calls (model, time);

      CREATE TABLE tool_calls (LIKE tool_calls_unpartitioned INCLUDING DEFAULTS,
        PRIMARY KEY (source, event_id, time)) PARTITION BY RANGE (time);
      CREATE INDEX tool_calls_run ON tool_calls (tenant_id, run_id);

      CREATE TABLE external_charges (
        source       text NOT NULL,
        event_id     text NOT NULL,
        tenant_id    text NOT NULL,
        project_id   text NOT NULL,
        run_id       text NOT NULL,
        phase        text,
        vendor       text NOT NULL,
        amount_micros bigint NOT NULL,
        description  text,
        time         timestamptz NOT NULL,
        PRIMARY KEY (source, event_id, time)
      ) PARTITION BY RANGE (time);
      CREATE INDEX external_charges_run ON external_charges (tenant_id, run_id);

      -- Day partitions are created ahead of time by the retention job and on demand by ingest (for
      -- late or early events); this log is what retention reads to find partitions to drop.
      CREATE TABLE partitions_log (
        parent      text NOT NULL,
        partition   text NOT NULL,
        day         date NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (parent, day)
      );
    `);

    // Existing rows (if any) move into day partitions created for them.
    const days: Array<{ day: string }> = await q.query(`
      SELECT DISTINCT (time AT TIME ZONE 'UTC')::date::text AS day FROM events_unpartitioned
      UNION SELECT DISTINCT (time AT TIME ZONE 'UTC')::date::text FROM llm_calls_unpartitioned
      UNION SELECT DISTINCT (time AT TIME ZONE 'UTC')::date::text FROM tool_calls_unpartitioned`);
    for (const { day } of days) {
      for (const table of ['events', 'llm_calls', 'tool_calls', 'external_charges']) {
        const name = `${table}_p${day.replaceAll('-', '')}`;
        const next = new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
        await q.query(
          `CREATE TABLE ${name} PARTITION OF ${table} FOR VALUES FROM ('${day} 00:00:00+00') TO ('${next} 00:00:00+00')`,
        );
        await q.query(`INSERT INTO partitions_log (parent, partition, day) VALUES ($1, $2, $3)`, [table, name, day]);
      }
    }
    await q.query(`
      INSERT INTO events SELECT * FROM events_unpartitioned;
      INSERT INTO llm_calls SELECT * FROM llm_calls_unpartitioned;
      INSERT INTO tool_calls SELECT * FROM tool_calls_unpartitioned;
      DROP TABLE events_unpartitioned, llm_calls_unpartitioned, tool_calls_unpartitioned;
    `);

    await q.query(`
      ALTER TABLE runs ADD COLUMN interventions integer NOT NULL DEFAULT 0;
      ALTER TABLE runs ADD COLUMN unpriced_calls integer NOT NULL DEFAULT 0;

      CREATE TABLE failures (
        tenant_id     text NOT NULL,
        run_id        text NOT NULL,
        phase         text NOT NULL DEFAULT '',
        role          text,
        reason        text NOT NULL,
        artifact_ref  text NOT NULL DEFAULT '',
        first_seen    timestamptz NOT NULL,
        last_seen     timestamptz NOT NULL,
        count         integer NOT NULL,
        PRIMARY KEY (tenant_id, run_id, phase, reason, artifact_ref)
      );
      CREATE INDEX failures_tenant_last_seen ON failures (tenant_id, last_seen DESC);
      CREATE INDEX failures_last_seen ON failures (last_seen DESC);

      CREATE TABLE interventions (
        source      text NOT NULL,
        event_id    text NOT NULL,
        tenant_id   text NOT NULL,
        run_id      text NOT NULL,
        user_id     text NOT NULL,
        action      text NOT NULL,
        reason      text NOT NULL,
        phase       text,
        time        timestamptz NOT NULL,
        PRIMARY KEY (source, event_id)
      );
      CREATE INDEX interventions_run ON interventions (tenant_id, run_id);

      CREATE TABLE impersonation_sessions (
        tenant_id       text NOT NULL,
        session_id      text NOT NULL,
        actor_id        text NOT NULL,
        target_user_id  text,
        reason          text,
        started_at      timestamptz,
        ended_at        timestamptz,
        PRIMARY KEY (tenant_id, session_id)
      );

      -- Usage statistics per UTC day (docs/decisions.md "Usage rollups keep a latency sketch"). Dimensions that do not apply are '' (so they can be keyed).
      -- latency_buckets counts calls per upper bound of libs/domain usage LATENCY_BUCKETS_MS (+inf last).
      CREATE TABLE usage_daily (
        day               date NOT NULL,
        tenant_id         text NOT NULL,
        project_id        text NOT NULL,
        role              text NOT NULL,
        kind              text NOT NULL CHECK (kind IN ('llm', 'tool')),
        model             text NOT NULL,
        provider          text NOT NULL,
        tool              text NOT NULL,
        mcp_server        text NOT NULL,
        user_id           text NOT NULL,
        call_count        bigint NOT NULL,
        success_count     bigint NOT NULL,
        failure_count     bigint NOT NULL,
        total_latency_ms  bigint NOT NULL,
        latency_buckets   bigint[] NOT NULL,
        input_tokens      bigint NOT NULL,
        output_tokens     bigint NOT NULL,
        cached_tokens     bigint NOT NULL,
        cost_micros       bigint NOT NULL,
        unpriced_calls    bigint NOT NULL,
        PRIMARY KEY (day, tenant_id, project_id, role, kind, model, provider, tool, mcp_server, user_id)
      );
      CREATE INDEX usage_daily_tenant_day ON usage_daily (tenant_id, day);

      CREATE TABLE usage_monthly (LIKE usage_daily INCLUDING ALL);

      -- Element-wise sum of latency histograms, as a function (upserts) and an aggregate (folding).
      CREATE FUNCTION bigint_array_add(a bigint[], b bigint[]) RETURNS bigint[]
        LANGUAGE sql IMMUTABLE PARALLEL SAFE
        AS $$ SELECT CASE WHEN a IS NULL THEN b ELSE ARRAY(SELECT x + y FROM unnest(a, b) AS t(x, y)) END $$;
      CREATE AGGREGATE bigint_array_sum(bigint[]) (SFUNC = bigint_array_add, STYPE = bigint[]);
      ALTER TABLE usage_monthly RENAME COLUMN day TO month;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP AGGREGATE bigint_array_sum(bigint[]); DROP FUNCTION bigint_array_add(bigint[], bigint[])`);
    await q.query(`DROP TABLE usage_monthly, usage_daily, impersonation_sessions, interventions, failures, partitions_log,
      external_charges, tool_calls, llm_calls, events`);
    await q.query(`ALTER TABLE runs DROP COLUMN interventions, DROP COLUMN unpriced_calls`);
  }
}
