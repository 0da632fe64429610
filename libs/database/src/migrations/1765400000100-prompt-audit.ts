import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The prompt audit (docs/events.md "Prompt audit"): a tenant setting, off by default, and the redacted prompt
 * and completion texts of llm_calls stored while it is on, kept `prompt_audit_retention_days` (ingest's
 * retention deletes older rows). One row per call event, keyed like the event log.
 */
export class PromptAudit1765400000100 implements MigrationInterface {
  name = 'PromptAudit1765400000100';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE tenants
        ADD COLUMN prompt_audit boolean NOT NULL DEFAULT false,
        ADD COLUMN prompt_audit_retention_days integer NOT NULL DEFAULT 30
          CHECK (prompt_audit_retention_days BETWEEN 1 AND 365);

      CREATE TABLE prompt_audit (
        source      text NOT NULL,
        event_id    text NOT NULL,
        time        timestamptz NOT NULL,
        tenant_id   text NOT NULL,
        project_id  text NOT NULL,
        run_id      text NOT NULL,
        phase       text,
        role        text,
        model       text NOT NULL,
        provider    text NOT NULL,
        prompt      text,
        completion  text,
        stored_at   timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (source, event_id, time),
        CHECK (prompt IS NOT NULL OR completion IS NOT NULL)
      );
      CREATE INDEX prompt_audit_tenant_time ON prompt_audit (tenant_id, time DESC, source, event_id);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TABLE prompt_audit;
      ALTER TABLE tenants DROP COLUMN prompt_audit, DROP COLUMN prompt_audit_retention_days;
    `);
  }
}
