import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Query API (docs/query.md): what the API itself owns, and the indexes its reads need.
 * - tenants.owner_sees_tokens: whether a tenant's Owners see raw token counts or only $ and time (a per-tenant
 *   setting, docs/security.md "Properties"); every other role's view is fixed by docs/security.md.
 * - api_keys: credentials of machine clients, one tenant and one role each, stored as the SHA-256 of a
 *   256-bit random secret (a slow hash adds nothing against guessing 256 random bits; the lookup is by key id).
 * - audit_log: every action taken through the API (who, what, why, on which tenant, what the owning service
 *   answered), written before the action is carried out and completed after.
 * - indexes: keyset pages of runs, lookups by run or project id alone (Admin, Support), stuck (running) runs,
 *   per-tenant stage scans, and a partial index over the
 *   few event types the metrics read from the log (proofs, ships, queue waits, cap hits, overrides); being
 *   partial, it costs nothing on the llm_call and tool_call inserts that make up almost all of the log.
 */
export class Query1764600000000 implements MigrationInterface {
  name = 'Query1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE tenants ADD COLUMN owner_sees_tokens boolean NOT NULL DEFAULT true;

      CREATE TABLE api_keys (
        key_id         text PRIMARY KEY,
        tenant_id      text NOT NULL,
        role           text NOT NULL CHECK (role IN ('admin', 'owner', 'op', 'bu', 'auditor', 'support', 'finance')),
        name           text NOT NULL CHECK (name <> ''),
        secret_sha256  bytea NOT NULL CHECK (length(secret_sha256) = 32),
        created_by     text NOT NULL,
        created_at     timestamptz NOT NULL DEFAULT now(),
        expires_at     timestamptz,
        revoked_at     timestamptz,
        last_used_at   timestamptz
      );
      CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at DESC);

      CREATE TABLE audit_log (
        id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at               timestamptz NOT NULL DEFAULT now(),
        tenant_id        text,
        actor            text NOT NULL,
        actor_tenant_id  text NOT NULL,
        actor_roles      text[] NOT NULL,
        credential       text NOT NULL,
        action           text NOT NULL,
        target           text NOT NULL,
        reason           text,
        params           jsonb NOT NULL DEFAULT '{}'::jsonb,
        outcome          text NOT NULL CHECK (outcome IN ('requested', 'succeeded', 'failed')),
        executor         text NOT NULL,
        detail           text,
        finished_at      timestamptz
      );
      CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id DESC);

      CREATE INDEX runs_tenant_first_event ON runs (tenant_id, first_event_at DESC, run_id DESC);
      CREATE INDEX runs_tenant_project_first_event ON runs (tenant_id, project_id, first_event_at DESC, run_id DESC);
      CREATE INDEX runs_first_event ON runs (first_event_at DESC, run_id DESC);
      -- Admin and Support look a run or project up by id alone (the keys lead with the tenant).
      CREATE INDEX runs_run_id ON runs (run_id);
      CREATE INDEX projects_project_id ON projects (project_id);
      CREATE INDEX runs_running ON runs (last_event_at) WHERE status = 'running';
      CREATE INDEX runs_tenant_finished ON runs (tenant_id, finished_at DESC) WHERE finished_at IS NOT NULL;
      CREATE INDEX stages_tenant_started ON stages (tenant_id, started_at);
      CREATE INDEX events_tenant_type_time ON events (tenant_id, type, time)
        WHERE type IN ('proof_due', 'proof_completed', 'publish_done', 'task_dequeued', 'cap_hit', 'user_override');
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX events_tenant_type_time, stages_tenant_started, runs_tenant_finished, runs_running, runs_first_event,
        runs_run_id, projects_project_id,
        runs_tenant_project_first_event, runs_tenant_first_event;
      DROP TABLE audit_log, api_keys;
      ALTER TABLE tenants DROP COLUMN owner_sees_tokens;
    `);
  }
}
