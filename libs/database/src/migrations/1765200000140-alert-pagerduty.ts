import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * PagerDuty Events v2 as a contact and delivery channel (docs/alert.md "Channels"). The
 * contact keeps the Events API URL in `url_encrypted` and the integration's routing key in `secret_encrypted`
 * (which webhooks use for their signing secret, hence the rewritten check).
 */
export class AlertPagerDuty1765200000140 implements MigrationInterface {
  name = 'AlertPagerDuty1765200000140';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE alert_contacts DROP CONSTRAINT alert_contacts_channel_check,
        ADD CONSTRAINT alert_contacts_channel_check CHECK (channel IN ('email', 'slack', 'webhook', 'pagerduty')),
        DROP CONSTRAINT alert_contacts_check3,
        ADD CONSTRAINT alert_contacts_secret_check
          CHECK ((channel IN ('webhook', 'pagerduty')) = (secret_encrypted IS NOT NULL));
      ALTER TABLE alert_deliveries DROP CONSTRAINT alert_deliveries_channel_check,
        ADD CONSTRAINT alert_deliveries_channel_check
          CHECK (channel IN ('email', 'slack', 'webhook', 'pagerduty', 'banner'));
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE alert_deliveries DROP CONSTRAINT alert_deliveries_channel_check,
        ADD CONSTRAINT alert_deliveries_channel_check CHECK (channel IN ('email', 'slack', 'webhook', 'banner'));
      ALTER TABLE alert_contacts DROP CONSTRAINT alert_contacts_channel_check,
        ADD CONSTRAINT alert_contacts_channel_check CHECK (channel IN ('email', 'slack', 'webhook')),
        DROP CONSTRAINT alert_contacts_secret_check,
        ADD CONSTRAINT alert_contacts_check3 CHECK ((channel = 'webhook') = (secret_encrypted IS NOT NULL));
    `);
  }
}
