import type { ModelPrice } from './pricing';
import { PriceTable, PriceTableSource } from './price-table';

const price = (provider: string, model: string, input: bigint, tenantId: string | null = null): ModelPrice => ({
  provider,
  model,
  tenantId,
  effectiveFrom: new Date('2026-01-01T00:00:00Z'),
  inputPerMillion: input,
  cachedInputPerMillion: null,
  outputPerMillion: input * 2n,
  reasoningPerMillion: null,
});
const at = new Date('2026-12-07T00:00:00Z');
const tokens = { tenantId: 't1', at, promptTokens: 1_000_000n, completionTokens: 0n };

describe('PriceTable', () => {
  const table = new PriceTable([
    price('openai', 'solo', 2_000_000n),
    price('a', 'shared', 1_000_000n),
    price('b', 'shared', 3_000_000n),
    price('openai', 'solo', 500_000n, 't1'),
  ]);

  it.each([
    ['the provider given', { provider: 'a', model: 'shared' }, 1_000_000n],
    [
      'the only provider of the model when none is given',
      { provider: null, model: 'solo', tenantId: 't2' },
      2_000_000n,
    ],
    ["the tenant's override", { provider: 'openai', model: 'solo' }, 500_000n],
    ['nothing when several providers price the model and none is given', { provider: null, model: 'shared' }, null],
    ['nothing for an unknown model', { provider: 'a', model: 'nope' }, null],
  ])('prices at %s', (_name, query, expected) => {
    expect(table.cost({ ...tokens, ...query })).toBe(expected);
  });

  it('compares models by a reference call over their providers', () => {
    expect(table.referencePrice('t2', 'shared', at)).toEqual({ min: 3_000_000n, max: 9_000_000n });
    expect(table.referencePrice('t2', 'nope', at)).toBeNull();
  });
});

describe('PriceTableSource', () => {
  it('keeps the table it has when a reload fails', async () => {
    let fail = false;
    const source = new PriceTableSource(
      async () => {
        if (fail) throw new Error('database down');
        return [price('a', 'm', 1_000_000n)];
      },
      () => undefined,
    );
    expect(source.table).toBeNull();
    await source.refresh();
    const loaded = source.table;
    fail = true;
    await expect(source.refresh()).rejects.toThrow('database down');
    expect(source.table).toBe(loaded);
    expect(loaded!.cost({ ...tokens, provider: 'a', model: 'm' })).toBe(1_000_000n);
  });
});
