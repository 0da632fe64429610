import { Injectable } from '@nestjs/common';
import type { ReservationKind } from '@agentmeter/domain';
import type { CounterScope, CounterSnapshot, ScopeLoad, SnapshotHold } from '../counters/counters.store';
import { COUNTERS_LOCK, CostCapDatabase, type Tx } from '../db/database';
import { capsJson, TIGHTEST_CAPS } from '../settings/settings.repository';
import { GroupCommit } from './group-commit';
import type { RunCapValues } from '@agentmeter/domain';

/** The ledger key of a spend reported by an event (a commit names the same event, so it meets it here). */
export function eventEntryKey(source: string, id: string): string {
  return `event:${source}\u001f${id}`;
}

export type CostSource = 'provided' | 'computed' | 'estimate' | 'unpriced';

/** One spend, accounted once per entry key. */
export interface SpendEntry {
  /** "event:" + source + "\u001f" + id of the llm_call / external_charge event. */
  entryKey: string;
  tenantId: string;
  projectId: string;
  runId: string;
  /** The tenant-day it counts toward. */
  day: string;
  kind: ReservationKind;
  tokens: bigint;
  /** Total $ (an external charge counts in full). */
  cost: bigint;
  /** The external part of cost. */
  external: bigint;
  costSource: CostSource;
  recordedBy: 'commit' | 'event';
  reservationId: string | null;
  occurredAt: Date;
}

/**
 * open: held, before its expiry; expired: past its expiry, still held (its spend is not known yet); committed,
 * released: settled; lapsed: expired under the earlier rule that gave the hold back at expiry.
 */
export type ReservationStatus = 'open' | 'committed' | 'released' | 'expired' | 'lapsed';

/** Reservations whose hold still counts against the caps. */
const UNSETTLED = `status IN ('open', 'expired')`;

export interface ReservationRow {
  reservation_id: string;
  tenant_id: string;
  project_id: string;
  run_id: string;
  role: string;
  attempt: number;
  kind: ReservationKind;
  model: string;
  requested_model: string;
  provider: string | null;
  decision: string;
  day: string;
  tokens: string;
  cost_micros: string;
  external_micros: string;
  status: ReservationStatus;
  created_at: Date;
  expires_at: Date;
  idempotency_key: string | null;
  request_hash: string | null;
}

export interface NewReservation {
  reservationId: string;
  tenantId: string;
  projectId: string;
  runId: string;
  role: string;
  attempt: number;
  kind: ReservationKind;
  model: string;
  requestedModel: string;
  provider: string | null;
  decision: string;
  day: string;
  tokens: bigint;
  cost: bigint;
  external: bigint;
  createdAt: Date;
  expiresAt: Date;
  /** The client's key of this reservation (unique per tenant), if it sent one. */
  idempotencyKey: string | null;
  /** Fingerprint of the request that made it (a key repeated with another body is refused). */
  requestHash: string | null;
}

export interface RunStart {
  tenantId: string;
  runId: string;
  projectId: string;
  playbook: string | null;
  caps: RunCapValues | null;
  startedAt: Date;
}

/** The ledger and reservation SQL. Statements taking a Tx run in the caller's counters transaction. */
@Injectable()
export class LedgerRepository {
  constructor(private readonly db: CostCapDatabase) {}

  /**
   * Reservation rows are written by group commit: the rows of all reserves waiting at one moment in one
   * statement (docs/cost-cap.md "The fast path").
   */
  private readonly reservationWriter = new GroupCommit<NewReservation, boolean>((rows) =>
    this.recordReservations(rows),
  );

  /**
   * Records a reservation the counters just granted, with the others waiting at the same moment (group commit);
   * resolves when its batch has committed. Returns false, writing nothing, when the tenant already has a
   * reservation with the same idempotency key.
   */
  recordReservation(r: NewReservation): Promise<boolean> {
    return this.reservationWriter.add(r);
  }

  /**
   * Records reservations in one statement: its own transaction, holding the counters lock shared, committed
   * without waiting for the WAL flush (a hold, not money: docs/cost-cap.md "The fast path"). Returns, per row,
   * whether it was written (false: its tenant already has a reservation with the same idempotency key).
   */
  async recordReservations(rows: NewReservation[]): Promise<boolean[]> {
    const written = await this.db.query<{ reservation_id: string }>(
      `WITH held AS (
         SELECT pg_advisory_xact_lock_shared(${COUNTERS_LOCK}), set_config('synchronous_commit', 'off', true)
       )
       INSERT INTO reservations (reservation_id, tenant_id, project_id, run_id, role, attempt, kind, model,
         requested_model, provider, decision, day, tokens, cost_micros, external_micros, status, created_at, expires_at,
         idempotency_key, request_hash)
       SELECT r.reservation_id, r.tenant_id, r.project_id, r.run_id, r.role, r.attempt, r.kind, r.model,
              r.requested_model, r.provider, r.decision, r.day, r.tokens, r.cost_micros, r.external_micros, 'open',
              r.created_at, r.expires_at, r.idempotency_key, r.request_hash
         FROM held,
              unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[],
                     $9::text[], $10::text[], $11::text[], $12::date[], $13::bigint[], $14::bigint[], $15::bigint[],
                     $16::timestamptz[], $17::timestamptz[], $18::text[], $19::text[])
                AS r(reservation_id, tenant_id, project_id, run_id, role, attempt, kind, model, requested_model,
                     provider, decision, day, tokens, cost_micros, external_micros, created_at, expires_at,
                     idempotency_key, request_hash)
       ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
       RETURNING reservation_id`,
      [
        rows.map((r) => r.reservationId),
        rows.map((r) => r.tenantId),
        rows.map((r) => r.projectId),
        rows.map((r) => r.runId),
        rows.map((r) => r.role),
        rows.map((r) => r.attempt),
        rows.map((r) => r.kind),
        rows.map((r) => r.model),
        rows.map((r) => r.requestedModel),
        rows.map((r) => r.provider),
        rows.map((r) => r.decision),
        rows.map((r) => r.day),
        rows.map((r) => r.tokens.toString()),
        rows.map((r) => r.cost.toString()),
        rows.map((r) => r.external.toString()),
        rows.map((r) => r.createdAt),
        rows.map((r) => r.expiresAt),
        rows.map((r) => r.idempotencyKey),
        rows.map((r) => r.requestHash),
      ],
    );
    const ids = new Set(written.map((row) => row.reservation_id));
    return rows.map((r) => ids.has(r.reservationId));
  }

  /** The tenant's reservation made with this idempotency key, if any. */
  async findReservation(reservationId: string): Promise<ReservationRow | null> {
    const [row] = await this.db.query<ReservationRow>(`SELECT * FROM reservations WHERE reservation_id = $1`, [
      reservationId,
    ]);
    return row ?? null;
  }

  async findByIdempotencyKey(tenantId: string, key: string): Promise<ReservationRow | null> {
    const [row] = await this.db.query<ReservationRow>(
      `SELECT * FROM reservations WHERE tenant_id = $1 AND idempotency_key = $2`,
      [tenantId, key],
    );
    return row ?? null;
  }

  /**
   * Commits a reservation in one statement: locks it, adds its ledger entry (the actual amounts, or the
   * reservation's estimate for what is not given) unless the entry key is already accounted, and marks it
   * committed. Returns the reservation as it was and the entry when it was new; null when there is none.
   */
  async commitReservation(
    tx: Tx,
    commit: {
      reservationId: string;
      entryKey: string;
      tokens: bigint | null;
      cost: bigint | null;
      source: CostSource;
      at: Date;
    },
  ): Promise<{
    reservation: ReservationRow;
    entry: { tokens: string; cost_micros: string; external_micros: string } | null;
  } | null> {
    const [row] = await tx.query<
      ReservationRow & { entry: { tokens: string; cost_micros: string; external_micros: string } | null }
    >(
      `WITH r AS (
         SELECT * FROM reservations WHERE reservation_id = $1 FOR UPDATE
       ), entry AS (
         INSERT INTO spend_ledger (entry_key, tenant_id, project_id, run_id, day, kind, tokens, cost_micros,
           external_micros, cost_source, recorded_by, reservation_id, occurred_at)
         SELECT $2, tenant_id, project_id, run_id, day, kind,
                CASE WHEN kind = 'charge' THEN 0 ELSE COALESCE($3::bigint, tokens) END,
                COALESCE($4::bigint, cost_micros),
                CASE WHEN kind = 'charge' THEN COALESCE($4::bigint, cost_micros) ELSE 0 END,
                CASE WHEN $4::bigint IS NULL THEN 'estimate' ELSE $5 END, 'commit', reservation_id, $6
           FROM r WHERE status IN ('open', 'expired', 'lapsed')
         ON CONFLICT (entry_key) DO NOTHING
         RETURNING tokens::text, cost_micros::text, external_micros::text
       ), settled AS (
         UPDATE reservations SET status = 'committed', settled_at = $6 FROM r
          WHERE reservations.reservation_id = r.reservation_id AND r.status IN ('open', 'expired', 'lapsed')
         RETURNING 1
       )
       SELECT r.*, (SELECT row_to_json(entry) FROM entry) AS entry FROM r`,
      [
        commit.reservationId,
        commit.entryKey,
        commit.tokens?.toString() ?? null,
        commit.cost?.toString() ?? null,
        commit.source,
        commit.at,
      ],
    );
    if (!row) return null;
    const { entry, ...reservation } = row;
    return { reservation: reservation as ReservationRow, entry };
  }

  /**
   * Releases an unsettled reservation (open or expired) in one statement; returns it as it was (null when
   * there is none). `void`:
   * the reservation was never answered to a client (a retried attempt), so its idempotency key is freed for
   * the attempt that replaces it.
   */
  async releaseReservation(
    tx: Tx,
    reservationId: string,
    at: Date,
    options: { void?: boolean } = {},
  ): Promise<ReservationRow | null> {
    const [row] = await tx.query<ReservationRow>(
      `WITH r AS (
         SELECT * FROM reservations WHERE reservation_id = $1 FOR UPDATE
       ), released AS (
         UPDATE reservations
            SET status = CASE WHEN r.status IN ('open', 'expired') THEN 'released' ELSE r.status END,
                settled_at = CASE WHEN r.status IN ('open', 'expired') THEN $2 ELSE r.settled_at END,
                idempotency_key = CASE WHEN $3::boolean THEN NULL ELSE r.idempotency_key END
           FROM r
          WHERE reservations.reservation_id = r.reservation_id AND (r.status IN ('open', 'expired') OR $3::boolean)
         RETURNING 1
       )
       SELECT * FROM r`,
      [reservationId, at, options.void === true],
    );
    return row ?? null;
  }

  /**
   * Marks the open reservations past their expiry `expired`; their holds stay counted until they are
   * committed or released (docs/cost-cap.md "Reservations and holds"). Returns how many.
   */
  async expireDue(now: Date): Promise<number> {
    const rows = await this.db.query(
      `UPDATE reservations SET status = 'expired' WHERE status = 'open' AND expires_at <= $1 RETURNING 1`,
      [now],
    );
    return rows.length;
  }

  /**
   * Moves an unsettled reservation's expiry to `expiresAt` (it is open again); returns it as it was, or null
   * when there is none.
   */
  async extendReservation(reservationId: string, expiresAt: Date): Promise<ReservationRow | null> {
    const [row] = await this.db.query<ReservationRow>(
      `WITH r AS (
         SELECT * FROM reservations WHERE reservation_id = $1 FOR UPDATE
       ), extended AS (
         UPDATE reservations SET status = 'open', expires_at = $2 FROM r
          WHERE reservations.reservation_id = r.reservation_id AND r.status IN ('open', 'expired') RETURNING 1
       )
       SELECT * FROM r`,
      [reservationId, expiresAt],
    );
    return row ?? null;
  }

  /** Unsettled reservations (their holds count): how many. */
  async countUnsettled(): Promise<number> {
    const [row] = await this.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM reservations WHERE ${UNSETTLED}`);
    return row?.n ?? 0;
  }

  /**
   * Locks the reservations named by spend events (docs/cost-cap.md "Settling from the event"), in id order so
   * that concurrent batches never wait on each other in a cycle; returns those found.
   */
  async lockReservations(tx: Tx, reservationIds: string[]): Promise<Map<string, ReservationRow>> {
    if (reservationIds.length === 0) return new Map();
    const rows = await tx.query<ReservationRow>(
      `SELECT * FROM reservations WHERE reservation_id = ANY($1::uuid[]) ORDER BY reservation_id FOR UPDATE`,
      [[...new Set(reservationIds)]],
    );
    return new Map(rows.map((row) => [row.reservation_id, row]));
  }

  /** Marks reservations committed (their ledger entries were just added in the caller's transaction). */
  async markCommitted(tx: Tx, reservationIds: string[], at: Date): Promise<void> {
    if (reservationIds.length === 0) return;
    await tx.query(
      `UPDATE reservations SET status = 'committed', settled_at = $2
        WHERE reservation_id = ANY($1::uuid[]) AND status IN ('open', 'expired', 'lapsed')`,
      [reservationIds, at],
    );
  }

  /** Adds spend entries; returns the keys that were new (the rest were already accounted). */
  async insertEntries(tx: Tx, entries: SpendEntry[]): Promise<Set<string>> {
    if (entries.length === 0) return new Set();
    const rows = await tx.query<{ entry_key: string }>(
      `INSERT INTO spend_ledger (entry_key, tenant_id, project_id, run_id, day, kind, tokens, cost_micros,
         external_micros, cost_source, recorded_by, reservation_id, occurred_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::date[], $6::text[], $7::bigint[],
         $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::uuid[], $13::timestamptz[])
       ON CONFLICT (entry_key) DO NOTHING
       RETURNING entry_key`,
      [
        entries.map((e) => e.entryKey),
        entries.map((e) => e.tenantId),
        entries.map((e) => e.projectId),
        entries.map((e) => e.runId),
        entries.map((e) => e.day),
        entries.map((e) => e.kind),
        entries.map((e) => e.tokens.toString()),
        entries.map((e) => e.cost.toString()),
        entries.map((e) => e.external.toString()),
        entries.map((e) => e.costSource),
        entries.map((e) => e.recordedBy),
        entries.map((e) => e.reservationId),
        entries.map((e) => e.occurredAt),
      ],
    );
    return new Set(rows.map((row) => row.entry_key));
  }

  async entryOfReservation(
    tx: Tx,
    reservationId: string,
  ): Promise<{ tokens: string; cost_micros: string; entry_key: string } | null> {
    const [row] = await tx.query<{ tokens: string; cost_micros: string; entry_key: string }>(
      `SELECT tokens, cost_micros, entry_key FROM spend_ledger WHERE reservation_id = $1`,
      [reservationId],
    );
    return row ?? null;
  }

  /** `now` (the service clock) stamps updated_at, which the rebuild compares with its clock's time. */
  async startRuns(tx: Tx, runs: RunStart[], now: Date): Promise<void> {
    for (const run of runs) {
      await tx.query(
        `INSERT INTO cost_runs (tenant_id, run_id, project_id, playbook, caps, started_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant_id, run_id) DO UPDATE SET
           playbook = COALESCE(EXCLUDED.playbook, cost_runs.playbook),
           caps = CASE WHEN EXCLUDED.caps IS NULL THEN cost_runs.caps
                       WHEN cost_runs.caps IS NULL THEN EXCLUDED.caps ELSE ${TIGHTEST_CAPS} END,
           started_at = LEAST(cost_runs.started_at, EXCLUDED.started_at),
           updated_at = EXCLUDED.updated_at`,
        [
          run.tenantId,
          run.runId,
          run.projectId,
          run.playbook,
          run.caps ? JSON.stringify(capsJson(run.caps)) : null,
          run.startedAt,
          now,
        ],
      );
    }
  }

  async finishRuns(
    tx: Tx,
    runs: Array<{ tenantId: string; runId: string; projectId: string; at: Date }>,
    now: Date,
  ): Promise<void> {
    for (const run of runs) {
      await tx.query(
        `INSERT INTO cost_runs (tenant_id, run_id, project_id, finished_at, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, run_id) DO UPDATE SET
           finished_at = GREATEST(cost_runs.finished_at, EXCLUDED.finished_at), updated_at = EXCLUDED.updated_at`,
        [run.tenantId, run.runId, run.projectId, run.at, now],
      );
    }
  }

  /** Marks a run stopped by a cap; false when it had finished or was already stopped. */
  async stopRun(tx: Tx, tenantId: string, runId: string, reason: string, at: Date): Promise<boolean> {
    const rows = await tx.query(
      `UPDATE cost_runs SET stopped_reason = $3, stopped_at = $4, updated_at = $4
        WHERE tenant_id = $1 AND run_id = $2 AND finished_at IS NULL AND stopped_reason IS NULL RETURNING 1`,
      [tenantId, runId, reason, at],
    );
    return rows.length > 0;
  }

  async clearStop(tx: Tx, tenantId: string, runId: string, at: Date): Promise<boolean> {
    const rows = await tx.query(
      `UPDATE cost_runs SET stopped_reason = NULL, stopped_at = NULL, updated_at = $3
        WHERE tenant_id = $1 AND run_id = $2 AND stopped_reason IS NOT NULL RETURNING 1`,
      [tenantId, runId, at],
    );
    return rows.length > 0;
  }

  /**
   * Everything Redis must hold, read under the exclusive counters lock: committed spend of the recent
   * tenant-days and of the runs that may still spend, and the holds of unsettled reservations.
   */
  async snapshot(tx: Tx, fromDay: string, activeSince: Date): Promise<CounterSnapshot> {
    const reservations = await tx.query<{
      reservation_id: string;
      tenant_id: string;
      run_id: string;
      day: string;
      tokens: string;
      cost_micros: string;
      external_micros: string;
      expires_at: Date;
    }>(
      `SELECT reservation_id, tenant_id, run_id, day, tokens, cost_micros, external_micros, expires_at
         FROM reservations WHERE ${UNSETTLED}`,
    );
    const days = await tx.query<{ tenant_id: string; day: string; cost: string }>(
      `SELECT tenant_id, day, sum(cost_micros)::text AS cost FROM spend_ledger WHERE day >= $1::date
        GROUP BY tenant_id, day`,
      [fromDay],
    );
    const runs = await tx.query<{
      tenant_id: string;
      run_id: string;
      tokens: string;
      cost: string;
      external: string;
      stopped_reason: string | null;
    }>(
      `WITH relevant AS (
         SELECT tenant_id, run_id FROM cost_runs
          WHERE (finished_at IS NULL AND COALESCE(started_at, updated_at) >= $2) OR updated_at >= $2
         UNION SELECT tenant_id, run_id FROM reservations WHERE ${UNSETTLED}
         UNION SELECT DISTINCT tenant_id, run_id FROM spend_ledger WHERE day >= $1::date
       )
       SELECT r.tenant_id, r.run_id,
              COALESCE(sum(l.tokens), 0)::text AS tokens, COALESCE(sum(l.cost_micros), 0)::text AS cost,
              COALESCE(sum(l.external_micros), 0)::text AS external, min(c.stopped_reason) AS stopped_reason
         FROM relevant r
         LEFT JOIN spend_ledger l ON l.tenant_id = r.tenant_id AND l.run_id = r.run_id
         LEFT JOIN cost_runs c ON c.tenant_id = r.tenant_id AND c.run_id = r.run_id AND c.finished_at IS NULL
        GROUP BY r.tenant_id, r.run_id`,
      [fromDay, activeSince],
    );

    const runKey = (tenantId: string, runId: string) => `${tenantId}\u0000${runId}`;
    const dayKey = (tenantId: string, day: string) => `${tenantId}\u0000${day}`;
    const runMap = new Map<string, CounterSnapshot['runs'][number]>();
    for (const row of runs) {
      runMap.set(runKey(row.tenant_id, row.run_id), {
        tenantId: row.tenant_id,
        runId: row.run_id,
        tokens: BigInt(row.tokens),
        cost: BigInt(row.cost),
        external: BigInt(row.external),
        heldTokens: 0n,
        heldCost: 0n,
        heldExternal: 0n,
        stop: row.stopped_reason,
      });
    }
    const dayMap = new Map<string, CounterSnapshot['days'][number]>();
    for (const row of days) {
      dayMap.set(dayKey(row.tenant_id, row.day), {
        tenantId: row.tenant_id,
        day: row.day,
        cost: BigInt(row.cost),
        heldCost: 0n,
      });
    }
    for (const r of reservations) {
      const run = runMap.get(runKey(r.tenant_id, r.run_id));
      if (run) {
        run.heldTokens += BigInt(r.tokens);
        run.heldCost += BigInt(r.cost_micros);
        run.heldExternal += BigInt(r.external_micros);
      }
      let day = dayMap.get(dayKey(r.tenant_id, r.day));
      if (!day) {
        day = { tenantId: r.tenant_id, day: r.day, cost: 0n, heldCost: 0n };
        dayMap.set(dayKey(r.tenant_id, r.day), day);
      }
      day.heldCost += BigInt(r.cost_micros);
    }
    return {
      runs: [...runMap.values()],
      days: [...dayMap.values()],
      reservations: reservations.map((r) => ({
        reservationId: r.reservation_id,
        tenantId: r.tenant_id,
        runId: r.run_id,
        day: r.day,
        tokens: BigInt(r.tokens),
        cost: BigInt(r.cost_micros),
        external: BigInt(r.external_micros),
        expiresAt: r.expires_at,
      })),
    };
  }

  /**
   * One counter key as the ledger has it (read under the exclusive counters lock): the committed spend of
   * a run (all of it) or a tenant-day, its stop mark, and the unsettled holds it counts.
   */
  async scopeLoad(tx: Tx, scope: CounterScope): Promise<ScopeLoad> {
    const holdRows = await tx.query<{
      reservation_id: string;
      tenant_id: string;
      run_id: string;
      day: string;
      tokens: string;
      cost_micros: string;
      external_micros: string;
      expires_at: Date;
    }>(
      `SELECT reservation_id, tenant_id, run_id, day, tokens, cost_micros, external_micros, expires_at
         FROM reservations WHERE tenant_id = $1 AND ${scope.kind === 'run' ? 'run_id' : 'day'} = $2 AND ${UNSETTLED}`,
      [scope.tenantId, scope.kind === 'run' ? scope.runId : scope.day],
    );
    const holds: SnapshotHold[] = holdRows.map((r) => ({
      reservationId: r.reservation_id,
      tenantId: r.tenant_id,
      runId: r.run_id,
      day: r.day,
      tokens: BigInt(r.tokens),
      cost: BigInt(r.cost_micros),
      external: BigInt(r.external_micros),
      expiresAt: r.expires_at,
    }));
    if (scope.kind === 'day') {
      const [row] = await tx.query<{ cost: string }>(
        `SELECT COALESCE(sum(cost_micros), 0)::text AS cost FROM spend_ledger WHERE tenant_id = $1 AND day = $2::date`,
        [scope.tenantId, scope.day],
      );
      return { kind: 'day', tenantId: scope.tenantId, day: scope.day, cost: BigInt(row!.cost), holds };
    }
    const [row] = await tx.query<{ tokens: string; cost: string; external: string; stop: string | null }>(
      `SELECT COALESCE(sum(tokens), 0)::text AS tokens, COALESCE(sum(cost_micros), 0)::text AS cost,
              COALESCE(sum(external_micros), 0)::text AS external,
              (SELECT stopped_reason FROM cost_runs
                WHERE tenant_id = $1 AND run_id = $2 AND finished_at IS NULL) AS stop
         FROM spend_ledger WHERE tenant_id = $1 AND run_id = $2`,
      [scope.tenantId, scope.runId],
    );
    return {
      kind: 'run',
      tenantId: scope.tenantId,
      runId: scope.runId,
      tokens: BigInt(row!.tokens),
      cost: BigInt(row!.cost),
      external: BigInt(row!.external),
      stop: row!.stop,
      holds,
    };
  }
}
