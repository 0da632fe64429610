import type { DataSource } from 'typeorm';

/** Tables partitioned by day on event time (raw rows; retention drops their partitions). */
export const DAILY_PARTITIONED_TABLES = ['events', 'llm_calls', 'tool_calls', 'external_charges'] as const;

const PARTITION_LOCK = 7_340_001; // pg_advisory_xact_lock key for partition DDL

/**
 * Creates and drops the day partitions of the raw tables. DDL runs in its own short transaction under an
 * advisory lock, never inside an ingest batch transaction (it would deadlock with concurrent batches).
 */
export class PartitionManager {
  private readonly known = new Set<string>();

  constructor(private readonly db: DataSource) {}

  /** Makes sure every table has a partition for each UTC day (YYYY-MM-DD). Cheap when they exist. */
  async ensureDays(days: Iterable<string>): Promise<void> {
    const missing = [...new Set(days)].filter((day) => !this.known.has(day)).sort();
    if (missing.length === 0) return;
    await this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK]);
      const existing: Array<{ parent: string; day: string }> = await tx.query(
        `SELECT parent, day::text AS day FROM partitions_log WHERE day = ANY($1::date[])`,
        [missing],
      );
      const have = new Set(existing.map((row) => `${row.parent}/${row.day}`));
      for (const day of missing) {
        if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new Error(`bad partition day ${day}`);
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
    for (const day of missing) this.known.add(day);
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

export function partitionName(table: string, day: string): string {
  return `${table}_p${day.replaceAll('-', '')}`;
}

function nextDay(day: string): string {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}
