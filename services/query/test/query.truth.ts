import type { AgentEventInput } from '@agentmeter/contracts';
import { parseUsd, utcDay } from '@agentmeter/domain';

/**
 * Totals computed straight from the events a test stored, with none of the service's code or SQL: the
 * independent side of every comparison in the query tests.
 */

type Input = AgentEventInput & { key?: string };
type Data = Record<string, unknown>;

const d = (e: Input) => e.data as unknown as Data;

export function sumBy(events: Input[], keyOf: (e: Input) => string | null, filter: (e: Input) => boolean = () => true) {
  const out = new Map<string | null, { llm: bigint; ext: bigint; calls: number; input: number; output: number }>();
  for (const e of events) {
    if (!filter(e)) continue;
    if (e.type !== 'llm_call' && e.type !== 'external_charge') continue;
    const key = keyOf(e);
    const row = out.get(key) ?? { llm: 0n, ext: 0n, calls: 0, input: 0, output: 0 };
    if (e.type === 'llm_call') {
      row.llm += parseUsd(String(d(e).cost_usd));
      row.calls += 1;
      row.input += Number(d(e).prompt_tokens);
      row.output += Number(d(e).completion_tokens);
    } else row.ext += parseUsd(String(d(e).amount_usd));
    out.set(key, row);
  }
  return out;
}

/** The user each run_started names, by "tenant/run". */
export function runUsers(events: Input[]): Map<string, string> {
  const users = new Map<string, string>();
  for (const e of events) {
    if (e.type === 'run_started' && d(e).user_id) {
      users.set(`${String(d(e).tenant_id)}/${String(d(e).run_id)}`, String(d(e).user_id));
    }
  }
  return users;
}

/**
 * The cost group of an event for a group_by dimension (null: not attributable), as docs/query.md defines it.
 * The user of a call or charge is its own user_id, else the one its run's run_started names.
 */
export function groupOf(dimension: string, events: Input[] = []): (e: Input) => string | null {
  const users = dimension === 'user' ? runUsers(events) : new Map<string, string>();
  return (e) => {
    const data = d(e);
    const llm = e.type === 'llm_call';
    switch (dimension) {
      case 'tenant':
        return String(data.tenant_id);
      case 'project':
        return `${String(data.tenant_id)}/${String(data.project_id)}`;
      case 'model':
        return llm ? String(data.model) : null;
      case 'agent':
        return llm ? String(data.role) : null;
      case 'phase':
        return (data.phase as string | undefined) ?? null;
      case 'user':
        return (
          (data.user_id as string | undefined) ?? users.get(`${String(data.tenant_id)}/${String(data.run_id)}`) ?? null
        );
      default:
        return null;
    }
  };
}

export interface PhaseTruth {
  pairs: number;
  finishedPairs: number;
  passedPairs: number;
  retries: number;
  failedAttempts: number;
  finishedAttempts: number;
  ttg: number[];
}

/** Per phase, from phase_entered / validation_failed / phase_advanced / publish_done events. */
export function phaseTruth(events: Input[]): Map<string, PhaseTruth> {
  type Attempt = { entered: number | null; status: 'running' | 'passed' | 'failed'; passedAt: number | null };
  const pairs = new Map<string, Map<number, Attempt>>();
  for (const e of events) {
    if (
      ![
        'phase_entered',
        'validation_failed',
        'phase_advanced',
        'publish_done',
        'llm_call',
        'tool_call',
        'artifact_written',
      ].includes(e.type)
    )
      continue;
    const data = d(e);
    const key = `${String(data.tenant_id)}\u0000${String(data.run_id)}\u0000${String(data.phase)}`;
    const attempts = pairs.get(key) ?? new Map<number, Attempt>();
    pairs.set(key, attempts);
    const n = Number(data.attempt ?? 1);
    const attempt = attempts.get(n) ?? { entered: null, status: 'running', passedAt: null };
    attempts.set(n, attempt);
    const t = Date.parse(e.time);
    if (e.type === 'phase_entered') attempt.entered = Math.min(attempt.entered ?? t, t);
    if (e.type === 'validation_failed' && attempt.status !== 'passed') attempt.status = 'failed';
    if (e.type === 'phase_advanced' || e.type === 'publish_done') {
      attempt.status = 'passed';
      attempt.passedAt = Math.max(attempt.passedAt ?? t, t);
    }
  }
  const out = new Map<string, PhaseTruth>();
  for (const [key, attempts] of pairs) {
    const phase = key.split('\u0000')[2]!;
    const row = out.get(phase) ?? {
      pairs: 0,
      finishedPairs: 0,
      passedPairs: 0,
      retries: 0,
      failedAttempts: 0,
      finishedAttempts: 0,
      ttg: [],
    };
    out.set(phase, row);
    const ordered = [...attempts.entries()].sort(([a], [b]) => a - b).map(([, a]) => a);
    const last = ordered[ordered.length - 1]!;
    row.pairs += 1;
    row.retries += ordered.length - 1;
    if (last.status !== 'running') row.finishedPairs += 1;
    if (last.status === 'passed') row.passedPairs += 1;
    for (const a of ordered) {
      if (a.status === 'failed') row.failedAttempts += 1;
      if (a.status !== 'running') row.finishedAttempts += 1;
    }
    const passed = ordered.find((a) => a.passedAt !== null);
    const entered = Math.min(...ordered.map((a) => a.entered ?? Infinity));
    if (passed) row.ttg.push(passed.passedAt! - entered);
  }
  return out;
}

export function todayOf(now: Date): string {
  return utcDay(now);
}

export function isDay(day: string) {
  return (e: Input) => utcDay(e.time) === day;
}

export function data(e: Input): Data {
  return d(e);
}
