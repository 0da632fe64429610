import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The event log keeps each payload as `json` (docs/benchmarks.md "Notes on the ingest numbers (2026-11-26)"), as it arrived after
 * redaction. `jsonb` built and sorted a binary object per event on the hottest insert of ingest (~30 % of
 * that statement's time); the log is read a run or a few event types at a time, where `->>` on `json`
 * costs nothing that matters.
 */
export class EventsPayloadJson1764810000000 implements MigrationInterface {
  name = 'EventsPayloadJson1764810000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE events ALTER COLUMN payload TYPE json USING payload::json`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE events ALTER COLUMN payload TYPE jsonb USING payload::jsonb`);
  }
}
