import type { DataSource } from 'typeorm';

/**
 * Tables partitioned by day on event time (raw rows; retention drops their partitions): the event log and the
 * call tables, which together are the `events` view (docs/decisions.md "Call facts stored once").
 */
export const DAILY_PARTITIONED_TABLES = ['event_log', 'llm_calls', 'tool_calls', 'external_charges'] as const;

const PARTITION_LOCK = 7_340_001; // pg_advisory_xact_lock key for partition DDL

const PARTITIONS_OF_DAYS = `SELECT parent, day::text AS day FROM partitions_log WHERE day = ANY($1::date[])`;

/**
 * Creates and drops the day partitions of the raw tables. DDL runs in its own short transaction under an
 * advisory lock, never inside an ingest batch transaction (it would deadlock with concurrent batches).
 */
export class PartitionManager {
  private readonly known = new Set<string>();

  constructor(private readonly db: DataSource) {}

  /**
   * Makes sure every table has a partition for each UTC day (YYYY-MM-DD). Cheap when they exist: days
   * seen before are remembered, and days whose partitions exist already are found in partitions_log
   * without the lock (otherwise every concurrent batch of a starting process queues on it).
   */
  async ensureDays(days: Iterable<string>): Promise<void> {
    const unknown = [...new Set(days)].filter((day) => !this.known.has(day)).sort();
    if (unknown.length === 0) return;
    for (const day of unknown) {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new Error(`bad partition day ${day}`);
    }
    // A partitions_log row is committed with its partition: a row seen without the lock is a partition.
    const logged = partitionsOf(await this.db.query(PARTITIONS_OF_DAYS, [unknown]));
    const missing = unknown.filter((day) => DAILY_PARTITIONED_TABLES.some((table) => !logged.has(`${table}/${day}`)));
    if (missing.length > 0) {
      await this.db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK]);
        const have = partitionsOf(await tx.query(PARTITIONS_OF_DAYS, [missing]));
        for (const day of missing) {
          for (const table of DAILY_PARTITIONED_TABLES) {
            if (have.has(`${table}/${day}`)) continue;
            const name = partitionName(table, day);
            await tx.query(
              `CREATE TABLE IF NOT EXISTS ${name} PARTITION OF ${table}
                 FOR VALUES FROM ('${day} 00:00:00+00') TO ('${nextDay(day)} 00:00:00+00')`,
            );
            await tx.query(
              `INSERT INTO partitions_log (parent, partition, day) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
              [table, name, day],
            );
          }
        }
      });
    }
    for (const day of unknown) this.known.add(day);
  }

  /** Forgets what exists (after another process dropped partitions, an insert fails; then re-ensure). */
  forget(): void {
    this.known.clear();
  }

  /** Drops every raw partition whose whole day is before `cutoff` (a UTC day). Returns their names. */
  async dropBefore(cutoff: string): Promise<string[]> {
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK]);
      const old: Array<{ partition: string; day: string }> = await tx.query(
        `SELECT partition, day::text AS day FROM partitions_log WHERE day < $1::date ORDER BY day, partition`,
        [cutoff],
      );
      for (const { partition } of old) await tx.query(`DROP TABLE IF EXISTS ${partition}`);
      await tx.query(`DELETE FROM partitions_log WHERE day < $1::date`, [cutoff]);
      for (const { day } of old) this.known.delete(day);
      return old.map((row) => row.partition);
    });
  }
}

/** "parent/day" of partitions_log rows. */
function partitionsOf(rows: Array<{ parent: string; day: string }>): Set<string> {
  return new Set(rows.map((row) => `${row.parent}/${row.day}`));
}

export function partitionName(table: string, day: string): string {
  return `${table}_p${day.replaceAll('-', '')}`;
}

function nextDay(day: string): string {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}
