import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

/**
 * What the deploy tests read from the repository's sources: the metrics the services define with
 * prom-client, the variables their config.ts schemas accept, the tables the migrations create. Regular
 * expressions over the TypeScript text, on purpose: the tests must not start the services.
 */

export const ROOT = join(__dirname, '..', '..');

export function read(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8');
}

export function readYaml<T = unknown>(path: string): T {
  return parse(read(path)) as T;
}

export function readYamlDocuments(path: string): unknown[] {
  return parseAllDocuments(read(path)).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]!.message}`);
    return doc.toJS() as unknown;
  });
}

/** Repository-relative paths of the files under `dir` whose names pass `keep`. */
export function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  const found: string[] = [];
  const walk = (absolute: string): void => {
    for (const entry of readdirSync(absolute)) {
      if (entry === 'node_modules' || entry === 'dist') continue;
      const path = join(absolute, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (keep(entry)) found.push(relative(ROOT, path));
    }
  };
  walk(join(ROOT, dir));
  return found.sort();
}

const isSource = (name: string): boolean => name.endsWith('.ts') && !/\.(spec|int-spec|e2e-spec)\.ts$/.test(name);

export type MetricType = 'Counter' | 'Gauge' | 'Histogram' | 'Summary';

export interface MetricDefinition {
  name: string;
  type: MetricType;
  labelNames: string[];
  file: string;
}

/** Every `new Counter|Gauge|Histogram|Summary({ name: '...', labelNames: [...] })` in services/ and libs/. */
export function metricDefinitions(): MetricDefinition[] {
  const definitions: MetricDefinition[] = [];
  for (const file of [...filesUnder('services', isSource), ...filesUnder('libs', isSource)]) {
    const text = read(file);
    const starts = [...text.matchAll(/new\s+(Counter|Gauge|Histogram|Summary)\b\s*(?:<[^(]*>)?\s*\(/g)];
    starts.forEach((start, index) => {
      // The options object lies between this constructor and the next one.
      const options = text.slice(start.index, starts[index + 1]?.index ?? text.length);
      const name = /\bname:\s*(['"`])([a-zA-Z_:][a-zA-Z0-9_:]*)\1/.exec(options)?.[2];
      if (!name) return; // not a prom-client options object (or a computed name, which the tests will not see)
      const labels = /\blabelNames:\s*\[([^\]]*)\]/.exec(options)?.[1] ?? '';
      definitions.push({
        name,
        type: start[1] as MetricType,
        labelNames: [...labels.matchAll(/['"`]([a-zA-Z_][a-zA-Z0-9_]*)['"`]/g)].map((m) => m[1]!),
        file,
      });
    });
  }
  return definitions;
}

/** The series names a metric of this type appears under in the exposition format, with their extra label. */
export function seriesOf(name: string, type: string): Array<[string, string[]]> {
  switch (type) {
    case 'Histogram':
    case 'histogram':
      return [
        [`${name}_bucket`, ['le']],
        [`${name}_sum`, []],
        [`${name}_count`, []],
      ];
    case 'Summary':
    case 'summary':
      return [
        [name, ['quantile']],
        [`${name}_sum`, []],
        [`${name}_count`, []],
      ];
    default:
      return [[name, []]];
  }
}

export interface ServiceConfig {
  /** services/<service>/src/<file>: `alert` for services/alert/src/config.ts. */
  service: string;
  file: string;
  /** Keys of the zod schema: the environment variables the service reads. */
  keys: Set<string>;
  /** Keys with neither a default nor `.optional()`: the service refuses to start without them. */
  required: Set<string>;
  port: number | undefined;
}

/** Every services/<name>/src/**\/config.ts (a worker with its own config.ts is found too). */
/** Keys of each env fragment of libs/http/src/env.ts, by the name a config.ts spreads (`...kafkaEnv`). */
function envFragments(): Record<string, Set<string>> {
  const text = read('libs/http/src/env.ts');
  const starts = [...text.matchAll(/^export (?:function|const) (\w+)/gm)];
  const fragments: Record<string, Set<string>> = {};
  starts.forEach((match, index) => {
    const body = text.slice(match.index, starts[index + 1]?.index ?? text.length);
    const keys = new Set([...body.matchAll(/^\s+([A-Z][A-Z0-9_]*)\s*:/gm)].map((m) => m[1]!));
    if (keys.size > 0) fragments[match[1] === 'serviceEnv' ? 'serviceEnv(' : match[1]!] = keys;
  });
  return fragments;
}

export function serviceConfigs(): ServiceConfig[] {
  return filesUnder('services', (name) => name === 'config.ts' || name.endsWith('.config.ts')).map((file) => {
    const text = read(file);
    const keyAt = [...text.matchAll(/^\s+([A-Z][A-Z0-9_]*)\s*:/gm)];
    const keys = new Set<string>();
    const required = new Set<string>();
    keyAt.forEach((match, index) => {
      const key = match[1]!;
      keys.add(key);
      let definition = text.slice(match.index, keyAt[index + 1]?.index ?? text.length);
      // `KEY: usd,` refers to a schema declared above the object: judge that declaration.
      const alias = /^\s*[A-Z0-9_]+\s*:\s*([a-zA-Z_]\w*)\s*,/.exec(definition)?.[1];
      if (alias) definition = new RegExp(`const ${alias}\\s*=([\\s\\S]*?);\\n`).exec(text)?.[1] ?? definition;
      if (!/\.default\(|\.optional\(\)|optional[A-Z]\w*|\.nullable\(\)/.test(definition)) required.add(key);
    });
    // The fragments every service spreads in (libs/http/src/env.ts): their keys all have a default or are optional.
    for (const [spread, fragment] of Object.entries(envFragments())) {
      if (text.includes(`...${spread}`)) for (const key of fragment) keys.add(key);
    }
    const port = (/\bPORT:[^\n]*\.default\((\d+)\)/.exec(text) ?? /\bserviceEnv\(\{\s*port:\s*(\d+)/.exec(text))?.[1];
    return { service: file.split('/')[1]!, file, keys, required, port: port ? Number(port) : undefined };
  });
}

/** `.default('...')` of a config key, e.g. query's GRAFANA_RUN_DASHBOARD_TEMPLATE. */
export function configDefault(file: string, key: string): string | undefined {
  const match = new RegExp(`\\b${key}:[\\s\\S]*?\\.default\\(\\s*(['"\`])([^'"\`]*)\\1`).exec(read(file));
  return match?.[2];
}

/** Tables the migrations create (or rename into existence). */
export function migrationTables(): Set<string> {
  const tables = new Set<string>();
  for (const file of filesUnder('libs/database/src/migrations', isSource)) {
    const text = read(file);
    for (const m of text.matchAll(/CREATE TABLE\s+(?:IF NOT EXISTS\s+)?([a-z_][a-z0-9_]*)/gi)) tables.add(m[1]!);
    for (const m of text.matchAll(/ALTER TABLE\s+[a-z_][a-z0-9_]*\s+RENAME TO\s+([a-z_][a-z0-9_]*)/gi))
      tables.add(m[1]!);
  }
  return tables;
}

/** Tables a query reads (`FROM t`, `JOIN t`). */
export function tablesOf(sql: string): string[] {
  return [...sql.matchAll(/\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_]*)/gi)].map((m) => m[1]!);
}
