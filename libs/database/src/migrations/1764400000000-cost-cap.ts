import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * cost-cap (docs/cost-cap.md). PostgreSQL is the source of truth; Redis only holds hot counters rebuilt
 * from these tables (docs/cost-cap.md "Rebuild").
 *
 * - spend_ledger: every accounted spend, once per key: an event identity (CloudEvents source + id, from a
 *   commit or from agent.events.v1, whichever comes first) or a reservation id. Append-only.
 * - reservations: admission holds, open until committed, released or expired.
 * - caps: the daily caps table (docs/cost-cap.md "Accounting and the ledger"), one row per tenant and local day. Its daily_cap_usd and spent_usd are kept in
 *   micro-USD like every amount here (daily_cap_micros, spent_micros); spent_micros is refreshed from the
 *   ledger, blocked records that the day's cap was reached.
 * - cap_policies (tenant and project defaults), tenant_pauses, model_ladders, cap_overrides (temporary
 *   raises) and cap_audit (who, what, old, new, why, when, expiry of every change).
 * - cost_runs: the runs cost-cap has seen (their own caps, wall-time start, whether a cap stopped them).
 * - cap_crossings: one row per crossing (80 or 100 % of one limit of one run or tenant-day), inserted with
 *   ON CONFLICT DO NOTHING by whichever replica sees it first: the claim that makes the event unique.
 * - cost_cap_outbox: Kafka messages to publish (cap events, control commands, alert signals), written in
 *   the transaction that decided them and published after; ids are deterministic, so a republish is a
 *   duplicate the consumer recognises.
 * - validator_samples and publisher_freezes: strict-mode Validator sampling per playbook.
 */
export class CostCap1764400000000 implements MigrationInterface {
  name = 'CostCap1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE spend_ledger (
        entry_key        text PRIMARY KEY,
        tenant_id        text NOT NULL,
        project_id       text NOT NULL,
        run_id           text NOT NULL,
        day              date NOT NULL,
        kind             text NOT NULL CHECK (kind IN ('llm', 'charge')),
        tokens           bigint NOT NULL CHECK (tokens >= 0),
        cost_micros      bigint NOT NULL CHECK (cost_micros >= 0),
        external_micros  bigint NOT NULL CHECK (external_micros >= 0 AND external_micros <= cost_micros),
        cost_source      text NOT NULL CHECK (cost_source IN ('provided', 'computed', 'estimate', 'unpriced')),
        recorded_by      text NOT NULL CHECK (recorded_by IN ('commit', 'event')),
        reservation_id   uuid,
        occurred_at      timestamptz NOT NULL,
        recorded_at      timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX spend_ledger_tenant_day ON spend_ledger (tenant_id, day);
      CREATE INDEX spend_ledger_run ON spend_ledger (tenant_id, run_id);
      CREATE INDEX spend_ledger_day ON spend_ledger (day);

      CREATE TABLE reservations (
        reservation_id   uuid PRIMARY KEY,
        tenant_id        text NOT NULL,
        project_id       text NOT NULL,
        run_id           text NOT NULL,
        role             text NOT NULL,
        attempt          integer NOT NULL,
        kind             text NOT NULL CHECK (kind IN ('llm', 'charge')),
        model            text NOT NULL,
        requested_model  text NOT NULL,
        provider         text,
        decision         text NOT NULL,
        day              date NOT NULL,
        tokens           bigint NOT NULL,
        cost_micros      bigint NOT NULL,
        external_micros  bigint NOT NULL,
        status           text NOT NULL CHECK (status IN ('open', 'committed', 'released', 'expired')),
        created_at       timestamptz NOT NULL,
        expires_at       timestamptz NOT NULL,
        settled_at       timestamptz
      );
      CREATE INDEX reservations_open_expiry ON reservations (expires_at) WHERE status = 'open';

      CREATE TABLE caps (
        tenant_id         text NOT NULL,
        date              date NOT NULL,
        daily_cap_micros  bigint,
        spent_micros      bigint NOT NULL DEFAULT 0,
        blocked           boolean NOT NULL DEFAULT false,
        blocked_at        timestamptz,
        updated_at        timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, date)
      );

      CREATE TABLE cap_policies (
        tenant_id                text NOT NULL,
        project_id               text NOT NULL DEFAULT '',
        daily_cap_micros         bigint CHECK (daily_cap_micros >= 0),
        run_max_tokens           bigint CHECK (run_max_tokens >= 0),
        run_max_wall_time_s      bigint CHECK (run_max_wall_time_s >= 0),
        run_max_cost_micros      bigint CHECK (run_max_cost_micros >= 0),
        run_max_external_micros  bigint CHECK (run_max_external_micros >= 0),
        updated_at               timestamptz NOT NULL DEFAULT now(),
        updated_by               text NOT NULL,
        PRIMARY KEY (tenant_id, project_id)
      );

      CREATE TABLE tenant_pauses (
        tenant_id  text PRIMARY KEY,
        paused_at  timestamptz NOT NULL,
        paused_by  text NOT NULL,
        reason     text NOT NULL
      );

      CREATE TABLE model_ladders (
        tenant_id      text NOT NULL,
        model          text NOT NULL,
        cheaper_model  text NOT NULL CHECK (cheaper_model <> model),
        PRIMARY KEY (tenant_id, model)
      );

      CREATE TABLE cap_overrides (
        override_id         uuid PRIMARY KEY,
        tenant_id           text NOT NULL,
        target              text NOT NULL
          CHECK (target IN ('tenant_daily_cost', 'run_tokens', 'run_wall_time', 'run_cost', 'run_external')),
        run_id              text,
        value               bigint NOT NULL CHECK (value >= 0),
        actor               text NOT NULL CHECK (actor <> ''),
        reason              text NOT NULL CHECK (reason <> ''),
        created_at          timestamptz NOT NULL,
        expires_at          timestamptz NOT NULL CHECK (expires_at > created_at),
        revoked_at          timestamptz,
        revoked_by          text,
        expiry_recorded_at  timestamptz
      );
      CREATE INDEX cap_overrides_tenant ON cap_overrides (tenant_id, expires_at) WHERE revoked_at IS NULL;

      CREATE TABLE cap_audit (
        audit_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at          timestamptz NOT NULL,
        tenant_id   text,
        actor       text NOT NULL CHECK (actor <> ''),
        action      text NOT NULL,
        target      text NOT NULL,
        old_value   jsonb,
        new_value   jsonb,
        reason      text NOT NULL CHECK (reason <> ''),
        expires_at  timestamptz
      );
      CREATE INDEX cap_audit_tenant ON cap_audit (tenant_id, audit_id DESC);

      CREATE TABLE cost_runs (
        tenant_id       text NOT NULL,
        run_id          text NOT NULL,
        project_id      text NOT NULL,
        playbook        text,
        caps            jsonb,
        started_at      timestamptz,
        finished_at     timestamptz,
        stopped_reason  text,
        stopped_at      timestamptz,
        updated_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, run_id)
      );
      CREATE INDEX cost_runs_running ON cost_runs (started_at) WHERE finished_at IS NULL;

      CREATE TABLE cap_crossings (
        crossing_id  text PRIMARY KEY,
        tenant_id    text NOT NULL,
        project_id   text NOT NULL,
        run_id       text NOT NULL,
        scope        text NOT NULL CHECK (scope IN ('run', 'tenant')),
        cap          text NOT NULL CHECK (cap IN ('tokens', 'wall_time', 'cost', 'external')),
        threshold    smallint NOT NULL CHECK (threshold IN (80, 100)),
        day          date,
        limit_value  bigint NOT NULL,
        observed     bigint NOT NULL,
        resets_at    timestamptz,
        override_id  uuid,
        crossed_at   timestamptz NOT NULL
      );
      CREATE INDEX cap_crossings_tenant ON cap_crossings (tenant_id, crossed_at DESC);

      CREATE TABLE cost_cap_outbox (
        message_id    text PRIMARY KEY,
        topic         text NOT NULL CHECK (topic IN ('events', 'control', 'alerts')),
        message_key   text NOT NULL,
        payload       jsonb NOT NULL,
        created_at    timestamptz NOT NULL DEFAULT now(),
        published_at  timestamptz
      );
      CREATE INDEX cost_cap_outbox_pending ON cost_cap_outbox (created_at) WHERE published_at IS NULL;

      CREATE TABLE validator_samples (
        playbook     text NOT NULL,
        sample_id    text NOT NULL,
        tenant_id    text,
        run_id       text,
        passed       boolean NOT NULL,
        recorded_at  timestamptz NOT NULL,
        PRIMARY KEY (playbook, sample_id)
      );
      CREATE INDEX validator_samples_recent ON validator_samples (playbook, recorded_at);

      CREATE TABLE publisher_freezes (
        playbook      text PRIMARY KEY,
        frozen_at     timestamptz NOT NULL,
        frozen_by     text NOT NULL,
        reason        text NOT NULL,
        samples       integer,
        failures      integer
      );
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE publisher_freezes, validator_samples, cost_cap_outbox, cap_crossings, cost_runs, cap_audit,
      cap_overrides, model_ladders, tenant_pauses, cap_policies, caps, reservations, spend_ledger`);
  }
}
