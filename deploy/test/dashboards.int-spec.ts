import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from '@agentmeter/testing';
import { filesUnder, read } from './repository';

/**
 * Every SQL query of the Grafana dashboards (panels and variables) runs against a migrated database, with
 * Grafana's macros and variables replaced the way Grafana's PostgreSQL datasource does: a renamed column or a
 * type error fails here, not on an operator's screen. The unit test (observability.spec.ts) checks the tables.
 */

interface Target {
  datasource?: { type?: string };
  rawSql?: string;
}
interface Panel {
  title: string;
  datasource?: { type?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; datasource?: { type?: string }; query?: unknown }> };
}

const PG = 'grafana-postgresql-datasource';
const FROM = '2026-01-01T00:00:00Z';
const TO = '2026-01-31T00:00:00Z';

/** Grafana's expansion: time macros, `${x:sqlstring}`, and multi-value variables as quoted lists. */
function expand(sql: string): string {
  return sql
    .replace(/\$__timeFilter\(([^)]+)\)/g, `$1 BETWEEN '${FROM}' AND '${TO}'`)
    .replace(/\$__timeFrom\(\)/g, `'${FROM}'`)
    .replace(/\$__timeTo\(\)/g, `'${TO}'`)
    .replace(/\$\{run_id:sqlstring\}/g, "'run-1'")
    .replace(/\$tenant\b/g, "'tenant-a','tenant-b'");
}

function queriesOf(file: string): Array<{ where: string; sql: string }> {
  const dashboard = JSON.parse(read(file)) as Dashboard;
  const panels = (list: Panel[]): Panel[] => list.flatMap((p) => [p, ...panels(p.panels ?? [])]);
  return [
    ...panels(dashboard.panels).flatMap((panel) =>
      (panel.targets ?? [])
        .filter((t) => (t.datasource ?? panel.datasource)?.type === PG && t.rawSql)
        .map((t) => ({ where: `${dashboard.uid} / ${panel.title}`, sql: t.rawSql! })),
    ),
    ...dashboard.templating.list
      .filter((v) => v.datasource?.type === PG && typeof v.query === 'string')
      .map((v) => ({ where: `${dashboard.uid} / $${v.name}`, sql: v.query as string })),
  ];
}

const queries = filesUnder('deploy/observability/grafana/dashboards', (name) => name.endsWith('.json')).flatMap(
  queriesOf,
);

describe('dashboard SQL', () => {
  let database: TestDatabase;
  let client: Client;

  beforeAll(async () => {
    database = await createTestDatabase();
    client = new Client({ connectionString: database.url });
    await client.connect();
    // Grafana runs these with a read-only role: so do we.
    await client.query('SET default_transaction_read_only = on');
  });

  afterAll(async () => {
    await client?.end();
    await database?.drop();
  });

  it('finds the queries', () => {
    expect(queries.length).toBeGreaterThan(10);
  });

  it.each(queries.map((q) => [q.where, q.sql]))('%s runs', async (_where, sql) => {
    const expanded = expand(sql);
    expect(expanded).not.toMatch(/\$\w/); // every variable replaced
    await expect(client.query(expanded)).resolves.toBeDefined();
  });
});
