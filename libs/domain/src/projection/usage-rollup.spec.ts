import { LATENCY_BUCKETS_MS, rollupModelUsage, type UsageDelta } from './usage-rollup';

function delta(key: Partial<UsageDelta>, calls: number, costMicros: bigint | null): UsageDelta {
  return {
    day: '2026-11-25',
    tenantId: 't1',
    projectId: 'p1',
    role: 'planner',
    kind: 'llm',
    model: 'gpt-4.1',
    provider: 'openai',
    tool: '',
    mcpServer: '',
    userId: '',
    calls,
    successes: calls,
    failures: 0,
    totalLatencyMs: 10 * calls,
    latencyBuckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0),
    latencySketch: {},
    inputTokens: BigInt(100 * calls),
    outputTokens: BigInt(10 * calls),
    cachedTokens: BigInt(calls),
    costMicros: costMicros ?? 0n,
    unpricedCalls: costMicros === null ? calls : 0,
    ...key,
  };
}

describe('rollupModelUsage', () => {
  it('sums the llm rows per day, tenant, model and provider, in key order, and leaves tool rows out', () => {
    const rows = rollupModelUsage([
      delta({ projectId: 'p1', role: 'planner' }, 2, 500n),
      delta({ projectId: 'p1', role: 'reviewer', model: 'claude', provider: 'anthropic' }, 1, 300n),
      delta({ projectId: 'p2', role: 'implementer', userId: 'u1' }, 3, 700n),
      delta({ projectId: 'p2', role: 'implementer', model: 'acme', provider: 'acme' }, 4, null),
      delta({ tenantId: 't0' }, 1, 1n),
      delta({ day: '2026-11-24' }, 1, 2n),
      delta({ kind: 'tool', model: '', provider: '', tool: 'grep' }, 9, null),
    ]);

    expect(rows.map((r) => [r.day, r.tenantId, r.model, r.provider])).toEqual([
      ['2026-11-24', 't1', 'gpt-4.1', 'openai'],
      ['2026-11-25', 't0', 'gpt-4.1', 'openai'],
      ['2026-11-25', 't1', 'acme', 'acme'],
      ['2026-11-25', 't1', 'claude', 'anthropic'],
      ['2026-11-25', 't1', 'gpt-4.1', 'openai'],
    ]);
    expect(rows[4]).toEqual({
      day: '2026-11-25',
      tenantId: 't1',
      model: 'gpt-4.1',
      provider: 'openai',
      calls: 5,
      inputTokens: 500n,
      outputTokens: 50n,
      cachedTokens: 5n,
      costMicros: 1200n,
      unpricedCalls: 0,
    });
    expect(rows[2]).toMatchObject({ calls: 4, costMicros: 0n, unpricedCalls: 4 });
  });

  it('does not change the deltas it sums', () => {
    const first = delta({}, 2, 500n);
    rollupModelUsage([first, delta({ role: 'reviewer' }, 1, 100n)]);
    expect(first).toMatchObject({ calls: 2, costMicros: 500n, inputTokens: 200n });
  });

  it('is empty without llm rows', () => {
    expect(rollupModelUsage([])).toEqual([]);
    expect(rollupModelUsage([delta({ kind: 'tool', model: '', provider: '', tool: 'grep' }, 1, null)])).toEqual([]);
  });
});
