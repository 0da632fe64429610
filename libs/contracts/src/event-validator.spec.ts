import { generateWorkload } from '../../testing/src/workload';
import { AgentEvent } from './envelope';
import { acceptsOwnedAgentEvent, parseOwnedAgentEvent } from './event-validator';
import { EVENT_TYPES } from './events';
import { EXAMPLE_EVENTS } from './examples';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Values put in place of every field: wrong types, bounds of lengths and numbers, near-miss formats. */
const REPLACEMENTS: Json[] = [
  null,
  true,
  0,
  -1,
  1,
  1.5,
  1000,
  1001,
  9007199254740991,
  9007199254740992,
  1e300,
  '',
  'x',
  'x'.repeat(100),
  'x'.repeat(101),
  'x'.repeat(200),
  'x'.repeat(201),
  'x'.repeat(500),
  'x'.repeat(501),
  'x'.repeat(1000),
  'x'.repeat(1001),
  'x'.repeat(4001),
  // Code points against UTF-16 units: 201 and 200 code points, 402 and 400 units.
  '\u{1F600}'.repeat(201),
  '\u{1F600}'.repeat(200),
  '\u{1F600}'.repeat(101),
  'e\u0301'.repeat(101),
  '\uD800',
  '0.0125',
  '1.',
  '-1',
  '0.1234567890123',
  '1234567890123',
  '2026-11-25T10:00:00Z',
  '2026-11-25T10:00:00.123+02:00',
  '2026-11-25T10:00:00',
  '2026-02-30T10:00:00Z',
  '2024-02-29T10:00:00Z',
  '2026-11-25',
  '2026-13-01',
  'ok',
  'error',
  'tenant',
  'cost',
  'run',
  [],
  ['a'],
  [1],
  {},
  { unknown: 1 },
];

/** Every path to a value inside `value` (objects and arrays), parents before children. */
function paths(value: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (value === null || typeof value !== 'object') return [];
  const entries: Array<[string | number, Json]> = Array.isArray(value)
    ? value.map((item, i) => [i, item])
    : Object.entries(value);
  return entries.flatMap(([key, item]) => [[...prefix, key], ...paths(item, [...prefix, key])]);
}

function withValue(base: Json, path: Array<string | number>, value: Json | undefined): Json {
  const copy = structuredClone(base) as Record<string | number, Json>;
  let parent = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, Json>;
  const last = path[path.length - 1]!;
  if (value === undefined) delete parent[last];
  else parent[last] = value;
  return copy;
}

/** Documented examples and a workload, then every example with each field removed, replaced or added to. */
function corpus(): Array<{ name: string; value: Json }> {
  const cases: Array<{ name: string; value: Json }> = [];
  const examples = EXAMPLE_EVENTS.map((event) => JSON.parse(JSON.stringify(event)) as Json);
  const workload = generateWorkload({
    seed: 17,
    tenants: 2,
    projectsPerTenant: 2,
    runsPerProject: 3,
    start: new Date('2026-11-01T00:00:00Z'),
  }).events;
  for (const { key: _key, ...event } of workload) cases.push({ name: `workload ${event.id}`, value: event as Json });
  for (const [i, example] of examples.entries()) {
    const name = `${EXAMPLE_EVENTS[i]!.type}`;
    cases.push({ name, value: example });
    for (const path of paths(example)) {
      const at = `${name} ${path.join('.')}`;
      cases.push({ name: `${at} removed`, value: withValue(example, path, undefined) });
      for (const replacement of REPLACEMENTS) {
        cases.push({
          name: `${at} = ${JSON.stringify(replacement).slice(0, 40)}`,
          value: withValue(example, path, replacement),
        });
      }
    }
    for (const path of [[], ...paths(example)]) {
      const target = path.reduce<Json>((node, key) => (node as Record<string | number, Json>)[key]!, example);
      if (target === null || typeof target !== 'object' || Array.isArray(target)) continue;
      cases.push({ name: `${name} ${path.join('.')}.extra added`, value: withValue(example, [...path, 'extra'], 'x') });
    }
    for (const type of EVENT_TYPES)
      cases.push({ name: `${name} as ${type}`, value: withValue(example, ['type'], type) });
  }
  for (const value of [null, 42, 'event', [], [{}], {}] as Json[]) cases.push({ name: JSON.stringify(value), value });
  return cases;
}

describe('the compiled event contract (ajv) against zod', () => {
  const cases = corpus();

  it('covers valid and invalid events of every type', () => {
    const verdicts = cases.map(({ value }) => AgentEvent.safeParse(structuredClone(value)).success);
    expect(verdicts.filter(Boolean).length).toBeGreaterThan(1000);
    expect(verdicts.filter((valid) => !valid).length).toBeGreaterThan(10_000);
    const validTypes = new Set(
      cases.filter((_, i) => verdicts[i]).map(({ value }) => (value as { type: string }).type),
    );
    expect([...validTypes].sort()).toEqual([...EVENT_TYPES].sort());
  });

  it('gives the same verdict as zod on every case, and the same event when valid', () => {
    const disagreements: string[] = [];
    for (const { name, value } of cases) {
      const zod = AgentEvent.safeParse(structuredClone(value));
      const owned = structuredClone(value);
      const accepted = acceptsOwnedAgentEvent(owned);
      if (accepted !== zod.success) disagreements.push(`${name}: ajv ${accepted}, zod ${zod.success}`);
      else if (zod.success && !isDeepStrictEqual(owned, zod.data)) disagreements.push(`${name}: outputs differ`);
    }
    expect(disagreements).toEqual([]);
  });

  it('reports an invalid event with zod’s reason, naming the field', () => {
    const example = JSON.parse(JSON.stringify(EXAMPLE_EVENTS.find((e) => e.type === 'llm_call'))) as Json;
    expect(parseOwnedAgentEvent(withValue(example, ['data', 'prompt_tokens'], -1))).toEqual({
      ok: false,
      reason: 'data.prompt_tokens: Too small: expected number to be >=0',
    });
    expect(parseOwnedAgentEvent(withValue(example, ['subject'], 'other'))).toEqual({
      ok: false,
      reason: 'subject: subject must equal data.tenant_id',
    });
  });

  it('fills in defaults and drops unknown keys, as zod’s output does', () => {
    const example = JSON.parse(JSON.stringify(EXAMPLE_EVENTS.find((e) => e.type === 'llm_call'))) as {
      data: Record<string, Json>;
    } & Record<string, Json>;
    delete example.data.cached_tokens;
    delete example.data.status;
    example.data.unknown = 'x';
    example.unknown = 'y';
    const result = parseOwnedAgentEvent(example);
    expect(result.ok).toBe(true);
    const event = (result as { event: { data: Record<string, unknown> } & Record<string, unknown> }).event;
    expect(event.data).toMatchObject({ cached_tokens: 0, status: 'ok' });
    expect(event.data).not.toHaveProperty('unknown');
    expect(event).not.toHaveProperty('unknown');
  });
});

/** Deep equality that ignores key order (zod builds objects in schema order, ajv keeps the input's). */
function isDeepStrictEqual(a: unknown, b: unknown): boolean {
  try {
    expect(a).toStrictEqual(b);
    return true;
  } catch {
    return false;
  }
}
