import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Alerts. docs/alert.md "Tables" describes every table; alert_banners is read by the query API
 * (GET /alerts/banners), so its columns are a contract: add, never rename or drop.
 *
 * - alert_contacts: who hears about a tenant (Owners) or the platform (Admins, tenant_id NULL), by e-mail,
 *   Slack or signed webhook. URLs and signing secrets are AES-256-GCM ciphertexts; only the host is kept
 *   in clear, for display.
 * - alert_thresholds: per-tenant overrides of a rule's parameters (the defaults live in the code).
 * - alert_mutes / alert_mute_timings: one-off and recurring silences, audited.
 * - alerts: the lifecycle state of each alert key (rule, tenant, scope, period).
 * - alert_samples: events counted by windowed event rules (repeated validation failures), once each.
 * - alert_groups / alert_notifications: every notification decided (also the muted ones), grouped per
 *   tenant and rule within a group window.
 * - alert_deliveries / alert_delivery_attempts: one row per group and contact (or the group's banners),
 *   claimed before sending; one row per attempt with its outcome and latency.
 * - alert_banners: in-app banners, one per audience and alert key, resolved with the alert.
 * - alert_audit: who changed contacts, thresholds and mutes, and every Alertmanager alert received.
 */
export class Alert1764500000000 implements MigrationInterface {
  name = 'Alert1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE alert_contacts (
        id                uuid PRIMARY KEY,
        tenant_id         text,
        audience          text NOT NULL CHECK (audience IN ('owner', 'admin')),
        channel           text NOT NULL CHECK (channel IN ('email', 'slack', 'webhook')),
        email             text,
        url_encrypted     bytea,
        url_host          text,
        secret_encrypted  bytea,
        failing_since     timestamptz,
        created_at        timestamptz NOT NULL DEFAULT now(),
        created_by        text NOT NULL,
        deleted_at        timestamptz,
        deleted_by        text,
        CHECK (audience = 'admin' OR tenant_id IS NOT NULL),
        CHECK ((channel = 'email') = (email IS NOT NULL)),
        CHECK ((channel = 'email') = (url_encrypted IS NULL)),
        CHECK ((channel = 'webhook') = (secret_encrypted IS NOT NULL))
      );
      CREATE INDEX alert_contacts_tenant ON alert_contacts (tenant_id, audience) WHERE deleted_at IS NULL;

      CREATE TABLE alert_thresholds (
        tenant_id   text NOT NULL,
        rule        text NOT NULL,
        params      jsonb NOT NULL,
        updated_at  timestamptz NOT NULL DEFAULT now(),
        updated_by  text NOT NULL,
        PRIMARY KEY (tenant_id, rule)
      );

      CREATE TABLE alert_mutes (
        id             uuid PRIMARY KEY,
        tenant_id      text NOT NULL,
        rule           text,
        starts_at      timestamptz NOT NULL,
        ends_at        timestamptz NOT NULL,
        actor          text NOT NULL CHECK (actor <> ''),
        reason         text NOT NULL CHECK (reason <> ''),
        created_at     timestamptz NOT NULL DEFAULT now(),
        cancelled_at   timestamptz,
        cancelled_by   text,
        cancel_reason  text,
        CHECK (starts_at < ends_at)
      );
      CREATE INDEX alert_mutes_tenant ON alert_mutes (tenant_id, ends_at) WHERE cancelled_at IS NULL;

      CREATE TABLE alert_mute_timings (
        id             uuid PRIMARY KEY,
        tenant_id      text NOT NULL,
        rule           text,
        name           text NOT NULL,
        weekdays       smallint[] NOT NULL,
        start_minute   smallint NOT NULL CHECK (start_minute BETWEEN 0 AND 1440),
        end_minute     smallint NOT NULL CHECK (end_minute BETWEEN 0 AND 1440),
        time_zone      text NOT NULL,
        actor          text NOT NULL CHECK (actor <> ''),
        reason         text NOT NULL CHECK (reason <> ''),
        created_at     timestamptz NOT NULL DEFAULT now(),
        deleted_at     timestamptz,
        deleted_by     text,
        CHECK (start_minute < end_minute)
      );
      CREATE INDEX alert_mute_timings_tenant ON alert_mute_timings (tenant_id) WHERE deleted_at IS NULL;

      CREATE TABLE alerts (
        alert_key          text PRIMARY KEY,
        rule               text NOT NULL,
        tenant_id          text NOT NULL,
        scope              text NOT NULL,
        period             text NOT NULL,
        audience           text NOT NULL CHECK (audience IN ('owner', 'admin')),
        severity           text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
        status             text NOT NULL CHECK (status IN ('firing', 'resolved')),
        title              text NOT NULL,
        body               text NOT NULL,
        threshold_fp       text NOT NULL,
        fired_at           timestamptz NOT NULL,
        last_observed_at   timestamptz NOT NULL,
        last_notified_at   timestamptz,
        resolved_at        timestamptz,
        notifications      integer NOT NULL DEFAULT 0,
        updated_at         timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX alerts_rule_firing ON alerts (rule, last_observed_at) WHERE status = 'firing';
      CREATE INDEX alerts_tenant ON alerts (tenant_id, updated_at DESC);

      CREATE TABLE alert_samples (
        rule       text NOT NULL,
        tenant_id  text NOT NULL,
        scope      text NOT NULL,
        sample_id  text NOT NULL,
        time       timestamptz NOT NULL,
        detail     text,
        PRIMARY KEY (rule, tenant_id, scope, sample_id)
      );
      CREATE INDEX alert_samples_time ON alert_samples (time);

      CREATE TABLE alert_groups (
        id          uuid PRIMARY KEY,
        tenant_id   text NOT NULL,
        rule        text NOT NULL,
        audience    text NOT NULL CHECK (audience IN ('owner', 'admin')),
        status      text NOT NULL CHECK (status IN ('open', 'flushed')),
        opened_at   timestamptz NOT NULL DEFAULT now(),
        flush_at    timestamptz NOT NULL,
        flushed_at  timestamptz
      );
      -- At most one open group per tenant, rule and audience: notifications join it until it is flushed.
      CREATE UNIQUE INDEX alert_groups_open ON alert_groups (tenant_id, rule, audience) WHERE status = 'open';

      CREATE TABLE alert_notifications (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        alert_key   text NOT NULL REFERENCES alerts (alert_key),
        group_id    uuid REFERENCES alert_groups (id),
        tenant_id   text NOT NULL,
        rule        text NOT NULL,
        kind        text NOT NULL CHECK (kind IN ('firing', 'repeat', 'resolved')),
        outcome     text NOT NULL CHECK (outcome IN ('queued', 'muted')),
        muted_by    text,
        severity    text NOT NULL,
        scope       text NOT NULL,
        period      text NOT NULL,
        title       text NOT NULL,
        body        text NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        CHECK ((outcome = 'queued') = (group_id IS NOT NULL))
      );
      CREATE INDEX alert_notifications_group ON alert_notifications (group_id);
      CREATE INDEX alert_notifications_tenant ON alert_notifications (tenant_id, created_at DESC);

      CREATE TABLE alert_deliveries (
        id            uuid PRIMARY KEY,
        group_id      uuid NOT NULL REFERENCES alert_groups (id),
        tenant_id     text NOT NULL,
        audience      text NOT NULL,
        rule          text NOT NULL,
        channel       text NOT NULL CHECK (channel IN ('email', 'slack', 'webhook', 'banner')),
        contact_id    uuid REFERENCES alert_contacts (id),
        status        text NOT NULL CHECK (status IN ('pending', 'sending', 'retrying', 'sent', 'dead')),
        attempts      integer NOT NULL DEFAULT 0,
        message       jsonb NOT NULL,
        lease_until   timestamptz,
        last_error    text,
        created_at    timestamptz NOT NULL DEFAULT now(),
        sent_at       timestamptz,
        dead_at       timestamptz,
        CHECK ((channel = 'banner') = (contact_id IS NULL))
      );
      -- One delivery per group and contact, and one banner delivery per group.
      CREATE UNIQUE INDEX alert_deliveries_once
        ON alert_deliveries (group_id, channel, COALESCE(contact_id, '00000000-0000-0000-0000-000000000000'));
      CREATE INDEX alert_deliveries_unfinished ON alert_deliveries (created_at)
        WHERE status IN ('pending', 'sending', 'retrying');
      CREATE INDEX alert_deliveries_dead ON alert_deliveries (dead_at) WHERE status = 'dead';
      CREATE INDEX alert_deliveries_contact ON alert_deliveries (contact_id, created_at DESC);

      CREATE TABLE alert_delivery_attempts (
        id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        delivery_id   uuid NOT NULL REFERENCES alert_deliveries (id),
        tenant_id     text NOT NULL,
        channel       text NOT NULL,
        attempt       integer NOT NULL,
        outcome       text NOT NULL CHECK (outcome IN ('sent', 'retry', 'dead')),
        status_code   integer,
        error         text,
        retry_after_ms integer,
        latency_ms    integer NOT NULL,
        at            timestamptz NOT NULL DEFAULT now(),
        UNIQUE (delivery_id, attempt)
      );

      -- In-app banners (the query API lists them). One row per audience and alert key; a re-fired alert
      -- reopens its banner (resolved_at back to NULL, updated_at now).
      CREATE TABLE alert_banners (
        id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant_id    text NOT NULL,
        audience     text NOT NULL CHECK (audience IN ('owner', 'admin')),
        alert_key    text NOT NULL,
        rule         text NOT NULL,
        severity     text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
        title        text NOT NULL,
        body         text NOT NULL,
        created_at   timestamptz NOT NULL DEFAULT now(),
        updated_at   timestamptz NOT NULL DEFAULT now(),
        resolved_at  timestamptz,
        UNIQUE (audience, alert_key)
      );
      CREATE INDEX alert_banners_active ON alert_banners (tenant_id, audience, updated_at DESC) WHERE resolved_at IS NULL;

      CREATE TABLE alert_audit (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at         timestamptz NOT NULL DEFAULT now(),
        tenant_id  text,
        actor      text NOT NULL,
        action     text NOT NULL,
        target     text NOT NULL,
        reason     text,
        detail     jsonb NOT NULL DEFAULT '{}'::jsonb
      );
      CREATE INDEX alert_audit_tenant ON alert_audit (tenant_id, id DESC);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE alert_audit, alert_banners, alert_delivery_attempts, alert_deliveries,
      alert_notifications, alert_groups, alert_samples, alerts, alert_mute_timings, alert_mutes, alert_thresholds,
      alert_contacts`);
  }
}
