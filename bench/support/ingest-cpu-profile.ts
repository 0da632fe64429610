/**
 * Reads a V8 CPU profile (`node --cpu-prof`, a `.cpuprofile` file) of a process run from the outside, and
 * sums its samples' self time by what the code does (the group of its file) and by function. Used by
 * bench/ingest.bench.ts on the compiled ingest service; nothing here knows that service's classes.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface CpuProfileSummary {
  /** Samples in the window, busy (not idle) ones. */
  samples: number;
  busy: number;
  /** Share of the busy samples by group, largest first. */
  groups: Array<[string, number]>;
  /** Share of the busy samples by function ("name (file:line)"), largest first. */
  functions: Array<[string, number]>;
}

/**
 * Groups by file, first match wins: a name a reader of the profile would use for that code. Paths are
 * those of the compiled build (dist/…/libs/<lib>/src, dist/…/services/<service>/src) or node_modules.
 */
const GROUPS: Array<[RegExp, string]> = [
  [/node_modules\/kafkajs\//, 'Kafka client (kafkajs)'],
  [/node_modules\/(pg|pg-protocol|pg-types|pg-pool|postgres-array)\//, 'PostgreSQL client (pg)'],
  [/node_modules\/typeorm\//, 'TypeORM (query runner)'],
  [/node_modules\/ajv|libs\/contracts\//, 'decode and validate (contracts, ajv)'],
  [/node_modules\/zod\//, 'zod'],
  [/node_modules\/(prom-client|@opentelemetry)\//, 'metrics and tracing'],
  [/node_modules\/(pino|sonic-boom)/, 'logging'],
  [/libs\/domain\/src\/(redact|pseudonym|secret)/, 'redaction and pseudonyms (libs/domain)'],
  [/libs\/domain\/src\/pric|\/pricing\//, 'pricing'],
  [/libs\/domain\//, 'projections and rollups (libs/domain)'],
  [/libs\/kafka\//, 'batch consumer (libs/kafka)'],
  [/libs\/database\//, 'libs/database'],
  [/\.repository\.js/, 'statements and parameters (repositories)'],
  [/services\/[\w-]+\/src\//, 'service code'],
  [/node_modules\//, 'other packages'],
  [/^node:|^internal\//, 'Node.js internals (streams, sockets, timers)'],
];

/** Nodes without a file that V8 names in parentheses. */
const SPECIAL: Record<string, string> = {
  '(garbage collector)': 'garbage collection',
  '(program)': 'V8 and native code outside JS (program)',
  '(idle)': 'idle',
  '(root)': 'idle',
};

/** Built-ins without a file, by function name. */
function builtinGroup(name: string): string {
  if (name === 'parse' || name === 'stringify') return `JSON.${name} (built-in)`;
  if (/^(exec|test|replace|match|split|RegExp)/.test(name)) return 'regular expressions (built-in)';
  return 'other built-ins and native code';
}

function groupOf(frame: ProfileNode['callFrame']): string {
  const special = SPECIAL[frame.functionName];
  if (special && !frame.url) return special;
  if (!frame.url) return builtinGroup(frame.functionName);
  for (const [pattern, name] of GROUPS) if (pattern.test(frame.url)) return name;
  return 'other';
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) return url.slice(modules + 'node_modules/'.length);
  const src = /(libs|services)\/.*$/.exec(url);
  return src ? src[0] : url.replace(/^file:\/\//, '');
}

/**
 * Self samples by group and function, within `window` (CLOCK_MONOTONIC µs, the clock of the profile's
 * timestamps and of process.hrtime) when given, so start-up is left out. Samples are counted, not timed by
 * their deltas: on a loaded machine the sampler itself is descheduled, and a long gap says nothing about
 * the code that happened to run when it woke up. Shares of the busy samples times the process's CPU time
 * (from /proc) give time per group.
 */
export function summariseCpuProfile(path: string, window?: { from: number; to: number }): CpuProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const groups = new Map<string, number>();
  const functions = new Map<string, number>();
  let samples = 0;
  let busy = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i] ?? 0;
    if (window && (at < window.from || at > window.to)) return;
    const node = byId.get(id);
    if (!node) return;
    samples++;
    const group = groupOf(node.callFrame);
    if (group === 'idle') return;
    busy++;
    groups.set(group, (groups.get(group) ?? 0) + 1);
    const { functionName, url, lineNumber } = node.callFrame;
    const name = url ? `${functionName || '(anonymous)'} (${shortUrl(url)}:${lineNumber + 1})` : functionName;
    functions.set(name, (functions.get(name) ?? 0) + 1);
  });
  const shares = (map: Map<string, number>) =>
    [...map].map(([name, n]): [string, number] => [name, n / Math.max(1, busy)]).sort((a, b) => b[1] - a[1]);
  return { samples, busy, groups: shares(groups), functions: shares(functions) };
}
