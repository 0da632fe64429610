import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Alerts muted by a one-off mute are delivered once when the mute ends, one summary per group
 * (docs/alert.md "Muting"):
 * - alert_mutes.replayed_at: the claim of the replay (set once, by whichever replica or job gets there first).
 *   Mutes already over when this runs are marked replayed: what they silenced predates the rule.
 * - alert_groups.muted_by: `mute:<id>` for a summary group (rendered "N alerts while muted").
 * - alert_notifications.replay_group_id: the summary group a muted notification was delivered in.
 */
export class AlertMuteReplay1765300000000 implements MigrationInterface {
  name = 'AlertMuteReplay1765300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE alert_mutes ADD COLUMN replayed_at timestamptz;
      UPDATE alert_mutes SET replayed_at = now() WHERE cancelled_at IS NOT NULL OR ends_at <= now();
      CREATE INDEX alert_mutes_unreplayed ON alert_mutes (ends_at) WHERE replayed_at IS NULL;
      ALTER TABLE alert_groups ADD COLUMN muted_by text;
      ALTER TABLE alert_notifications ADD COLUMN replay_group_id uuid REFERENCES alert_groups (id);
      CREATE INDEX alert_notifications_muted ON alert_notifications (tenant_id, muted_by) WHERE outcome = 'muted';
      CREATE INDEX alert_notifications_replay_group ON alert_notifications (replay_group_id)
        WHERE replay_group_id IS NOT NULL;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX alert_notifications_replay_group;
      DROP INDEX alert_notifications_muted;
      ALTER TABLE alert_notifications DROP COLUMN replay_group_id;
      ALTER TABLE alert_groups DROP COLUMN muted_by;
      DROP INDEX alert_mutes_unreplayed;
      ALTER TABLE alert_mutes DROP COLUMN replayed_at;
    `);
  }
}
