import { callCost, type ModelPrice, PriceBook, type TokenCounts } from './pricing';

function price(overrides: Partial<ModelPrice> & Pick<ModelPrice, 'effectiveFrom'>): ModelPrice {
  return {
    provider: 'openai',
    model: 'gpt-4.1',
    tenantId: null,
    inputPerMillion: 2_000_000n,
    cachedInputPerMillion: 500_000n,
    outputPerMillion: 8_000_000n,
    reasoningPerMillion: null,
    ...overrides,
  };
}

const d = (iso: string) => new Date(iso);

describe('PriceBook.priceAt', () => {
  const book = new PriceBook([
    price({ effectiveFrom: d('2025-01-01T00:00:00Z'), inputPerMillion: 1n }),
    price({ effectiveFrom: d('2025-06-01T00:00:00Z'), inputPerMillion: 2n }),
    price({ effectiveFrom: d('2025-03-01T00:00:00Z'), inputPerMillion: 3n }), // out of order on purpose
    price({ effectiveFrom: d('2025-04-01T00:00:00Z'), inputPerMillion: 10n, tenantId: 'acme' }),
    price({ effectiveFrom: d('2025-08-01T00:00:00Z'), inputPerMillion: 11n, tenantId: 'acme' }),
    price({ effectiveFrom: d('2025-01-01T00:00:00Z'), inputPerMillion: 20n, model: 'gpt-4.1-mini' }),
    price({ effectiveFrom: d('2025-01-01T00:00:00Z'), inputPerMillion: 30n, provider: 'azure' }),
  ]);

  it.each([
    ['before any price', 'other', 'openai', 'gpt-4.1', '2024-12-31T23:59:59.999Z', null],
    ['exactly at effective_from', 'other', 'openai', 'gpt-4.1', '2025-01-01T00:00:00Z', 1n],
    ['latest effective_from <= time', 'other', 'openai', 'gpt-4.1', '2025-05-31T23:59:59Z', 3n],
    ['the newest global price', 'other', 'openai', 'gpt-4.1', '2026-01-01T00:00:00Z', 2n],
    ['global before the override starts', 'acme', 'openai', 'gpt-4.1', '2025-03-31T00:00:00Z', 3n],
    ['override beats a newer global price', 'acme', 'openai', 'gpt-4.1', '2025-07-01T00:00:00Z', 10n],
    ['the newest override', 'acme', 'openai', 'gpt-4.1', '2025-08-01T00:00:00Z', 11n],
    ['another model', 'acme', 'openai', 'gpt-4.1-mini', '2025-08-01T00:00:00Z', 20n],
    ['the provider is part of the key', 'other', 'azure', 'gpt-4.1', '2025-08-01T00:00:00Z', 30n],
    ['an unknown model is unpriced', 'other', 'openai', 'gpt-9', '2025-08-01T00:00:00Z', null],
    ['models match exactly', 'other', 'openai', 'GPT-4.1', '2025-08-01T00:00:00Z', null],
  ])('%s', (_name, tenantId, provider, model, at, input) => {
    const found = book.priceAt({ tenantId, provider, model, at: d(at) });
    expect(found?.inputPerMillion ?? null).toBe(input);
  });
});

describe('PriceBook.priceAt with retired prices', () => {
  const retiredAt = d('2025-09-01T00:00:00Z');
  const book = new PriceBook([
    price({ effectiveFrom: d('2025-01-01T00:00:00Z'), inputPerMillion: 1n }),
    price({ effectiveFrom: d('2025-06-01T00:00:00Z'), inputPerMillion: 2n, retiredAt }),
    price({ effectiveFrom: d('2025-04-01T00:00:00Z'), inputPerMillion: 10n, tenantId: 'acme', retiredAt }),
    price({ effectiveFrom: d('2025-12-01T00:00:00Z'), inputPerMillion: 4n, model: 'gpt-4.1-mini', retiredAt }),
  ]);

  it.each([
    ['in effect until retired', 'other', 'gpt-4.1', '2025-08-31T23:59:59.999Z', 2n],
    ['a retired list price leaves the model unpriced', 'other', 'gpt-4.1', '2025-09-01T00:00:00Z', null],
    ['the override applies until retired', 'acme', 'gpt-4.1', '2025-08-01T00:00:00Z', 10n],
    ['a retired override leaves the list price (retired too here)', 'acme', 'gpt-4.1', '2025-10-01T00:00:00Z', null],
    ['an older list price is in effect before the newer one', 'acme', 'gpt-4.1', '2025-03-01T00:00:00Z', 1n],
    ['a price retired before it started never applies', 'other', 'gpt-4.1-mini', '2026-01-01T00:00:00Z', null],
  ])('%s', (_name, tenantId, model, at, input) => {
    const found = book.priceAt({ tenantId, provider: 'openai', model, at: d(at) });
    expect(found?.inputPerMillion ?? null).toBe(input);
  });

  it('a retired override falls back to a list price still in effect', () => {
    const fallback = new PriceBook([
      price({ effectiveFrom: d('2025-01-01T00:00:00Z'), inputPerMillion: 1n }),
      price({ effectiveFrom: d('2025-04-01T00:00:00Z'), inputPerMillion: 10n, tenantId: 'acme', retiredAt }),
    ]);
    const at = (iso: string) =>
      fallback.priceAt({ tenantId: 'acme', provider: 'openai', model: 'gpt-4.1', at: d(iso) });
    expect(at('2025-08-01T00:00:00Z')?.inputPerMillion).toBe(10n);
    expect(at('2025-09-01T00:00:00Z')?.inputPerMillion).toBe(1n);
  });
});

describe('callCost', () => {
  const gpt41 = price({ effectiveFrom: d('2025-01-01T00:00:00Z') });
  const withReasoning = { ...gpt41, reasoningPerMillion: 12_000_000n };
  const noCachedRate = { ...gpt41, cachedInputPerMillion: null };
  const tokens = (prompt: number, cached: number, completion: number, reasoning: number): TokenCounts => ({
    promptTokens: BigInt(prompt),
    cachedTokens: BigInt(cached),
    completionTokens: BigInt(completion),
    reasoningTokens: BigInt(reasoning),
  });

  it.each([
    ['no tokens', gpt41, tokens(0, 0, 0, 0), 0n],
    ['one million prompt tokens', gpt41, tokens(1_000_000, 0, 0, 0), 2_000_000n],
    ['one million completion tokens', gpt41, tokens(0, 0, 1_000_000, 0), 8_000_000n],
    // 800k input at $2 + 200k cached at $0.50 + 100k output at $8 = 1.6 + 0.1 + 0.8
    ['cached tokens are part of the prompt', gpt41, tokens(1_000_000, 200_000, 100_000, 0), 2_500_000n],
    ['all of the prompt cached', gpt41, tokens(1_000, 1_000, 0, 0), 500n],
    ['cached rate falls back to input', noCachedRate, tokens(1_000, 400, 0, 0), 2_000n],
    ['reasoning at output rate when unset', gpt41, tokens(0, 0, 1_000, 600), 8_000n],
    // 400 output at $8 + 600 reasoning at $12
    ['reasoning at its own rate when set', withReasoning, tokens(0, 0, 1_000, 600), 3_200n + 7_200n],
    ['cached beyond the prompt is capped', gpt41, tokens(100, 500, 0, 0), 50n],
    ['reasoning beyond the completion is capped', withReasoning, tokens(0, 0, 100, 900), 1_200n],
    // each part rounds half up on its own: 1 token at $2 = 2 micros; 1 at $0.50 = 0.5 -> 1; 1 at $8 = 8
    ['each part rounds half up', gpt41, tokens(2, 1, 1, 0), 2n + 1n + 8n],
    [
      'sub-micro parts round down',
      price({ effectiveFrom: d('2025-01-01T00:00:00Z'), inputPerMillion: 400_000n }),
      tokens(1, 0, 0, 0),
      0n,
    ],
    ['large counts stay exact', gpt41, tokens(9_007_199_254_740_991, 0, 0, 0), 18_014_398_509_481_982n],
  ])('%s', (_name, at, counts, micros) => {
    expect(callCost(at, counts)).toBe(micros);
  });
});
