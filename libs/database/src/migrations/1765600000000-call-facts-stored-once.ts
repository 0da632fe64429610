import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Call facts stored once (docs/decisions.md "Call facts stored once"): `llm_call`, `tool_call` and
 * `external_charge` events live in their call tables only, with their payload; the log table becomes
 * `event_log` and keeps every other event (and the LLM calls no call table counts: aggregate spans,
 * docs/otlp.md). `events` is a `UNION ALL` view of the four, with the columns every reader uses; each call
 * branch has a constant `type`, so a filter on type drops the other branches when the plan is made.
 *
 * The call tables gain what the log row held beyond their columns: `payload` (the event's data as stored),
 * and the log's trace id. For llm_call and tool_call that is `log_trace_id`, set only where it differs from
 * the call's own `trace_id` (the log took the traceparent's first, the call its data's first; '' stands for
 * a log row without one): NULL, the usual case, costs nothing. external_charges has no trace id of its
 * own, so it gets `trace_id`. `received_at` (unused by every reader) stays on the log only.
 *
 * Everything runs in the migration's one transaction, and the view must count exactly the rows the log
 * did, or the transaction fails: no event is lost or doubled.
 */
export class CallFactsStoredOnce1765600000000 implements MigrationInterface {
  name = 'CallFactsStoredOnce1765600000000';

  async up(q: QueryRunner): Promise<void> {
    const before = await count(q, `SELECT count(*)::text AS n FROM events`);
    await renameLog(q, 'events', 'event_log');
    await q.query(`
      ALTER TABLE llm_calls ADD COLUMN payload json, ADD COLUMN log_trace_id text;
      ALTER TABLE tool_calls ADD COLUMN payload json, ADD COLUMN log_trace_id text;
      ALTER TABLE external_charges ADD COLUMN payload json, ADD COLUMN trace_id text;
    `);
    for (const table of ['llm_calls', 'tool_calls']) {
      await q.query(`
        UPDATE ${table} c SET payload = e.payload,
               log_trace_id = CASE WHEN e.trace_id IS NOT DISTINCT FROM c.trace_id THEN NULL
                                   ELSE COALESCE(e.trace_id, '') END
          FROM event_log e
         WHERE e.source = c.source AND e.event_id = c.event_id AND e.time = c.time`);
    }
    await q.query(`
      UPDATE external_charges c SET payload = e.payload, trace_id = e.trace_id
        FROM event_log e
       WHERE e.source = c.source AND e.event_id = c.event_id AND e.time = c.time`);
    // A call row without its log row is not something ingest writes (both go in one transaction); one written
    // by hand gets its columns as payload, and a place in `events`, rather than failing the migration.
    let orphans = 0n;
    for (const table of ['llm_calls', 'tool_calls', 'external_charges']) {
      orphans += await count(
        q,
        `WITH filled AS (
          UPDATE ${table} c SET payload = (to_jsonb(c) - ARRAY['source', 'event_id', 'time', 'payload', 'log_trace_id',
                                            'cost_micros', 'cost_source', 'amount_micros'])::json
           WHERE payload IS NULL RETURNING 1)
         SELECT count(*)::text AS n FROM filled`,
      );
      await q.query(`ALTER TABLE ${table} ALTER COLUMN payload SET NOT NULL`);
      await q.query(`
        DELETE FROM event_log e USING ${table} c
         WHERE e.source = c.source AND e.event_id = c.event_id AND e.time = c.time`);
    }
    await q.query(EVENTS_VIEW);
    const after = await count(q, `SELECT count(*)::text AS n FROM events`);
    if (after !== before + orphans) {
      throw new Error(
        `events: ${before} rows and ${orphans} call rows without one before, ${after} after; nothing changed`,
      );
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP VIEW events`);
    await q.query(`
      INSERT INTO event_log (source, event_id, tenant_id, run_id, type, time, payload, trace_id)
        SELECT source, event_id, tenant_id, run_id, 'llm_call', time, payload, ${LOG_TRACE_ID} FROM llm_calls;
      INSERT INTO event_log (source, event_id, tenant_id, run_id, type, time, payload, trace_id)
        SELECT source, event_id, tenant_id, run_id, 'tool_call', time, payload, ${LOG_TRACE_ID} FROM tool_calls;
      INSERT INTO event_log (source, event_id, tenant_id, run_id, type, time, payload, trace_id)
        SELECT source, event_id, tenant_id, run_id, 'external_charge', time, payload, trace_id FROM external_charges;
      ALTER TABLE llm_calls DROP COLUMN payload, DROP COLUMN log_trace_id;
      ALTER TABLE tool_calls DROP COLUMN payload, DROP COLUMN log_trace_id;
      ALTER TABLE external_charges DROP COLUMN payload, DROP COLUMN trace_id;
    `);
    await renameLog(q, 'event_log', 'events');
  }
}

async function count(q: QueryRunner, sql: string): Promise<bigint> {
  const rows: Array<{ n: string }> = await q.query(sql);
  return BigInt(rows[0]!.n);
}

/** The trace id of the log row a call table row stands for. */
const LOG_TRACE_ID = `CASE log_trace_id WHEN '' THEN NULL ELSE COALESCE(log_trace_id, trace_id) END`;

/** Every stored event, as the log held them all before (docs/decisions.md "Call facts stored once"). */
const EVENTS_VIEW = `CREATE VIEW events AS
  SELECT source, event_id, tenant_id, run_id, type, time, payload, trace_id FROM event_log
  UNION ALL
  SELECT source, event_id, tenant_id, run_id, 'llm_call'::text, time, payload, ${LOG_TRACE_ID} FROM llm_calls
  UNION ALL
  SELECT source, event_id, tenant_id, run_id, 'tool_call'::text, time, payload, ${LOG_TRACE_ID} FROM tool_calls
  UNION ALL
  SELECT source, event_id, tenant_id, run_id, 'external_charge'::text, time, payload, trace_id FROM external_charges`;

/** Renames the log table, its indexes, its day partitions (and theirs) and their partitions_log rows. */
async function renameLog(q: QueryRunner, from: string, to: string): Promise<void> {
  await q.query(`ALTER TABLE ${from} RENAME TO ${to}`);
  for (const index of ['pkey', 'run_time', 'tenant_type_time']) {
    await q.query(`ALTER INDEX ${from}_${index} RENAME TO ${to}_${index}`);
  }
  const partitions: Array<{ name: string }> = await q.query(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = $1::regclass ORDER BY 1`,
    [to],
  );
  for (const { name } of partitions) {
    if (!name.startsWith(`${from}_p`)) continue;
    await q.query(`ALTER TABLE ${name} RENAME TO ${to}${name.slice(from.length)}`);
    const indexes: Array<{ name: string }> = await q.query(
      `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = $1::regclass ORDER BY 1`,
      [`${to}${name.slice(from.length)}`],
    );
    for (const index of indexes) {
      if (index.name.startsWith(`${name}_`)) {
        await q.query(`ALTER INDEX ${index.name} RENAME TO ${to}${index.name.slice(from.length)}`);
      }
    }
  }
  await q.query(
    `UPDATE partitions_log SET parent = $2, partition = $2 || '_p' || substr(partition, length($1) + 3) WHERE parent = $1`,
    [from, to],
  );
}
