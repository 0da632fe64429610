import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Foundation schema (docs/decisions.md "Who owns which table"): tenants, projects, runs, stages (one row per phase attempt),
 * the append-only event log (unique on CloudEvents source + id), and the per-call facts.
 * Money columns are bigint micro-USD. Status columns carry a rank and the event time that set them, so
 * projections converge to the same row whatever order events arrive in.
 */
export class Foundation1764100000000 implements MigrationInterface {
  name = 'Foundation1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tenants (
        tenant_id   text PRIMARY KEY,
        name        text,
        time_zone   text NOT NULL DEFAULT 'UTC',
        created_at  timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE projects (
        tenant_id   text NOT NULL REFERENCES tenants (tenant_id),
        project_id  text NOT NULL,
        name        text,
        created_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, project_id)
      );

      CREATE TABLE runs (
        tenant_id        text NOT NULL,
        run_id           text NOT NULL,
        project_id       text NOT NULL,
        playbook         text,
        status           text NOT NULL DEFAULT 'unknown',
        status_rank      smallint NOT NULL DEFAULT 0,
        status_at        timestamptz,
        phase            text,
        role             text,
        phase_at         timestamptz,
        started_at       timestamptz,
        finished_at      timestamptz,
        tokens_in        bigint NOT NULL DEFAULT 0,
        tokens_out       bigint NOT NULL DEFAULT 0,
        cost_micros      bigint NOT NULL DEFAULT 0,
        external_micros  bigint NOT NULL DEFAULT 0,
        llm_calls        integer NOT NULL DEFAULT 0,
        cached_calls     integer NOT NULL DEFAULT 0,
        cached           boolean GENERATED ALWAYS AS (cached_calls > 0) STORED,
        model            text,
        model_at         timestamptz,
        error            text,
        environment      jsonb,
        caps             jsonb,
        first_event_at   timestamptz NOT NULL,
        last_event_at    timestamptz NOT NULL,
        updated_at       timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, run_id),
        FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, project_id)
      );
      CREATE INDEX runs_tenant_started ON runs (tenant_id, started_at DESC);
      CREATE INDEX runs_tenant_project ON runs (tenant_id, project_id, started_at DESC);

      CREATE TABLE stages (
        tenant_id          text NOT NULL,
        run_id             text NOT NULL,
        phase              text NOT NULL,
        attempt            integer NOT NULL,
        role               text,
        status             text NOT NULL DEFAULT 'pending',
        status_rank        smallint NOT NULL DEFAULT 0,
        status_at          timestamptz,
        started_at         timestamptz,
        finished_at        timestamptz,
        trace_id           text,
        prompt_tokens      bigint NOT NULL DEFAULT 0,
        completion_tokens  bigint NOT NULL DEFAULT 0,
        cached_tokens      bigint NOT NULL DEFAULT 0,
        cost_micros        bigint NOT NULL DEFAULT 0,
        llm_calls          integer NOT NULL DEFAULT 0,
        updated_at         timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, run_id, phase, attempt),
        FOREIGN KEY (tenant_id, run_id) REFERENCES runs (tenant_id, run_id)
      );

      CREATE TABLE events (
        source       text NOT NULL,
        event_id     text NOT NULL,
        tenant_id    text NOT NULL,
        run_id       text,
        type         text NOT NULL,
        time         timestamptz NOT NULL,
        payload      jsonb NOT NULL,
        trace_id     text,
        received_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (source, event_id)
      );
      CREATE INDEX events_run_time ON events (tenant_id, run_id, time);

      CREATE TABLE llm_calls (
        source             text NOT NULL,
        event_id           text NOT NULL,
        tenant_id          text NOT NULL,
        project_id         text NOT NULL,
        run_id             text NOT NULL,
        phase              text NOT NULL,
        attempt            integer NOT NULL,
        role               text NOT NULL,
        model              text NOT NULL,
        provider           text NOT NULL,
        prompt_tokens      bigint NOT NULL,
        completion_tokens  bigint NOT NULL,
        cached_tokens      bigint NOT NULL,
        reasoning_tokens   bigint NOT NULL,
        cost_micros        bigint,
        cost_source        text NOT NULL CHECK (cost_source IN ('provided', 'computed', 'unpriced')),
        latency_ms         integer NOT NULL,
        cached             boolean NOT NULL,
        status             text NOT NULL,
        trace_id           text,
        span_id            text,
        user_id            text,
        time               timestamptz NOT NULL,
        PRIMARY KEY (source, event_id)
      );
      CREATE INDEX llm_calls_run ON llm_calls (tenant_id, run_id);
      CREATE INDEX llm_calls_tenant_time ON llm_calls (tenant_id, time);

      CREATE TABLE tool_calls (
        source           text NOT NULL,
        event_id         text NOT NULL,
        tenant_id        text NOT NULL,
        project_id       text NOT NULL,
        run_id           text NOT NULL,
        phase            text NOT NULL,
        attempt          integer NOT NULL,
        role             text NOT NULL,
        tool             text NOT NULL,
        mcp_server       text,
        cache_key_space  text,
        cache_hit        boolean,
        latency_ms       integer NOT NULL,
        status           text NOT NULL,
        trace_id         text,
        time             timestamptz NOT NULL,
        PRIMARY KEY (source, event_id)
      );
      CREATE INDEX tool_calls_run ON tool_calls (tenant_id, run_id);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE tool_calls, llm_calls, events, stages, runs, projects, tenants`);
  }
}
