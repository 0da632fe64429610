import type { AgentEvent } from '@agentmeter/contracts';
import { AgentEvent as AgentEventSchema } from '@agentmeter/contracts';
import { higher, projectEvents, traceIdOf } from './run-projection';

const base = { tenant_id: 't1', project_id: 'p1', run_id: 'r1' };
let seq = 0;
function event(
  type: string,
  minute: number,
  data: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): AgentEvent {
  return AgentEventSchema.parse({
    specversion: '1.0',
    id: `e${++seq}`,
    source: 'test',
    type,
    time: new Date(Date.UTC(2026, 10, 1, 0, minute)).toISOString(),
    subject: 't1',
    data: { ...base, ...data },
    ...extra,
  }) as AgentEvent;
}
const stage = { phase: 'plan', role: 'planner' };
const noCost = () => null;

describe('projectEvents', () => {
  it('sums tokens per stage attempt and per run', () => {
    const { runs, stages } = projectEvents(
      [
        event('llm_call', 1, {
          ...stage,
          model: 'm',
          provider: 'p',
          prompt_tokens: 10,
          completion_tokens: 5,
          latency_ms: 1,
        }),
        event('llm_call', 2, {
          ...stage,
          model: 'm',
          provider: 'p',
          prompt_tokens: 7,
          completion_tokens: 3,
          latency_ms: 1,
        }),
        event('llm_call', 3, {
          ...stage,
          attempt: 2,
          model: 'm2',
          provider: 'p',
          prompt_tokens: 1,
          completion_tokens: 1,
          latency_ms: 1,
        }),
      ],
      () => 100n,
    );
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ tokensIn: 18n, tokensOut: 9n, costMicros: 300n, llmCalls: 3 });
    expect(runs[0]!.model?.value).toBe('m2');
    expect(stages.map((s) => [s.attempt, s.promptTokens, s.completionTokens])).toEqual([
      [1, 17n, 8n],
      [2, 1n, 1n],
    ]);
  });

  it.each([
    ['in order', [0, 1, 2]],
    ['reversed', [2, 1, 0]],
    ['shuffled', [1, 2, 0]],
  ])('gives the same statuses whatever the arrival order (%s)', (_name, order) => {
    const events = [
      event('run_started', 0, {}),
      event('phase_entered', 1, stage),
      event('phase_advanced', 5, { ...stage, next_phase: 'implement' }),
    ];
    const { runs, stages } = projectEvents(
      order.map((i) => events[i]!),
      noCost,
    );
    expect(runs[0]!.status?.value.status).toBe('running');
    expect(stages[0]).toMatchObject({ status: { value: 'passed' } });
    expect(stages[0]!.startedAt?.toISOString()).toBe('2026-11-01T00:01:00.000Z');
    expect(stages[0]!.finishedAt?.toISOString()).toBe('2026-11-01T00:05:00.000Z');
  });

  it('never reopens a finished run with a late event', () => {
    const { runs } = projectEvents([event('run_finished', 10, {}), event('run_started', 0, {})], noCost);
    expect(runs[0]!.status?.value.status).toBe('succeeded');
    expect(runs[0]!.startedAt?.toISOString()).toBe('2026-11-01T00:00:00.000Z');
  });

  it('records the failure reason of a failed run', () => {
    const { runs } = projectEvents([event('run_failed', 3, { error: 'boom' })], noCost);
    expect(runs[0]!.status?.value).toEqual({ status: 'failed', error: 'boom' });
  });

  it('adds external charges to the run cost', () => {
    const { runs } = projectEvents([event('external_charge', 1, { vendor: 'v', amount_usd: '1.25' })], noCost);
    expect(runs[0]).toMatchObject({ externalMicros: 1_250_000n, costMicros: 1_250_000n });
  });

  it('counts unpriced calls per run and adds nothing to the cost for them', () => {
    const call = (minute: number, model: string) =>
      event('llm_call', minute, {
        ...stage,
        model,
        provider: 'p',
        prompt_tokens: 1,
        completion_tokens: 1,
        latency_ms: 1,
      });
    const { runs, stages } = projectEvents([call(1, 'priced'), call(2, 'unknown'), call(3, 'unknown')], (e) =>
      e.data.model === 'priced' ? 40n : null,
    );
    expect(runs[0]).toMatchObject({ costMicros: 40n, llmCalls: 3, unpricedCalls: 2 });
    expect(stages[0]).toMatchObject({ costMicros: 40n, llmCalls: 3 });
  });

  it('takes the stage trace id from the phase_entered traceparent', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const { stages } = projectEvents([event('phase_entered', 1, stage, { traceparent })], noCost);
    expect(stages[0]!.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
  });

  it('keeps tenant-scoped events out of run rows', () => {
    const { runs } = projectEvents(
      [
        AgentEventSchema.parse({
          specversion: '1.0',
          id: 'imp',
          source: 'test',
          type: 'impersonation_started',
          time: '2026-11-01T00:00:00Z',
          subject: 't1',
          data: { tenant_id: 't1', session_id: 's', actor_id: 'a', target_user_id: 'u' },
        }) as AgentEvent,
      ],
      noCost,
    );
    expect(runs).toEqual([]);
  });
});

describe('higher', () => {
  const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute));
  it.each([
    [{ value: 'a', rank: 1, at: at(5) }, { value: 'b', rank: 2, at: at(1) }, 'b'],
    [{ value: 'a', rank: 2, at: at(1) }, { value: 'b', rank: 1, at: at(5) }, 'a'],
    [{ value: 'a', rank: 1, at: at(1) }, { value: 'b', rank: 1, at: at(2) }, 'b'],
    [{ value: 'a', rank: 1, at: at(2) }, { value: 'b', rank: 1, at: at(1) }, 'a'],
  ])('picks the higher rank, then the later time', (current, next, winner) => {
    expect(higher(current, next).value).toBe(winner);
  });
});

describe('traceIdOf', () => {
  it.each([
    ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', '0af7651916cd43dd8448eb211c80319c'],
    ['garbage', null],
    [undefined, null],
  ])('%p', (input, expected) => {
    expect(traceIdOf(input)).toBe(expected);
  });
});

describe('phase, role and deltas on run events', () => {
  it('moves the run phase by event time, and never adds the deltas to the totals', () => {
    const deltas = { input_tokens: 500, output_tokens: 50, cost_usd: '1.000000' };
    const events = [
      event('run_finished', 9, { phase: 'publish', role: 'publisher', ...deltas }),
      event('run_started', 1, { phase: 'plan', role: 'planner' }),
      event('phase_advanced', 5, { ...stage, attempt: 1, ...deltas }),
    ];
    const [run] = projectEvents(events, noCost).runs;
    expect(run?.phase?.value).toEqual({ phase: 'publish', role: 'publisher' });
    expect(run).toMatchObject({ tokensIn: 0n, tokensOut: 0n, costMicros: 0n, llmCalls: 0 });
  });
});
