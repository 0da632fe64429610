import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Alerts are grouped per tenant, rule and audience, and also per `group_key`: empty for our own rules, and
 * Alertmanager's own group key for its alerts, so that alerts Alertmanager keeps apart (its `group_by` labels)
 * are not merged into one message titled after the first of them.
 */
export class AlertGroupKey1765200000141 implements MigrationInterface {
  name = 'AlertGroupKey1765200000141';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE alert_groups ADD COLUMN group_key text NOT NULL DEFAULT '';
      DROP INDEX alert_groups_open;
      CREATE UNIQUE INDEX alert_groups_open ON alert_groups (tenant_id, rule, audience, group_key) WHERE status = 'open';
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX alert_groups_open;
      ALTER TABLE alert_groups DROP COLUMN group_key;
      CREATE UNIQUE INDEX alert_groups_open ON alert_groups (tenant_id, rule, audience) WHERE status = 'open';
    `);
  }
}
