import { type Micros, tokenCost } from '../money';

/**
 * Model prices (docs/query.md "Prices"): effective-dated list prices per model and provider, and per-tenant
 * overrides of the same shape. Rates are integer micro-USD per 1M tokens.
 *
 * Which price applies to a call made at time t by tenant T:
 * - a price is in effect at t when its effective_from <= t; of several, the latest effective_from wins;
 * - a tenant's override in effect at t beats every global list price, whatever their dates (an override is
 *   a negotiated rate; it ends only when a newer override replaces it);
 * - a retired price stops applying at its retired_at, and the one before it does not come back: a retired
 *   override leaves the global list price, a retired list price leaves the model unpriced;
 * - provider and model match exactly (no aliases, no case folding); no match means the call is unpriced.
 *
 * How tokens are billed (the llm_call contract's counts, as OpenAI reports them):
 * - cached_tokens are part of prompt_tokens, billed at the cached-input rate (the input rate when the
 *   price has none); the rest of the prompt at the input rate;
 * - reasoning_tokens are part of completion_tokens, billed at the reasoning rate when the price sets one,
 *   else at the output rate; the rest of the completion at the output rate;
 * - a part larger than its whole (bad producer data) is capped at the whole, so no count is negative;
 * - each of the four parts is rounded half up to whole micros by tokenCost(), then summed.
 * The reprice SQL (llm_call_cost() in migration 1764300000000-pricing) implements the same rule; the
 * pricing integration test holds the two together.
 */

export interface ModelPrice {
  provider: string;
  model: string;
  /** null for the global list price; else the tenant whose override this is. */
  tenantId: string | null;
  effectiveFrom: Date;
  inputPerMillion: Micros;
  /** null: cached input costs the input rate. */
  cachedInputPerMillion: Micros | null;
  outputPerMillion: Micros;
  /** null: reasoning tokens cost the output rate. */
  reasoningPerMillion: Micros | null;
  /**
   * When the price was retired (docs/query.md "Prices"): from then on it no longer applies, and neither does
   * an older price of the same list (a retired override leaves the list price; a retired list price leaves
   * the model unpriced). Absent or null: in effect until a newer price replaces it.
   */
  retiredAt?: Date | null;
}

export interface PriceQuery {
  tenantId: string;
  provider: string;
  model: string;
  at: Date;
}

export interface TokenCounts {
  promptTokens: bigint;
  completionTokens: bigint;
  cachedTokens: bigint;
  reasoningTokens: bigint;
}

interface ModelPrices {
  /** Newest first. */
  global: ModelPrice[];
  /** Per tenant, newest first. */
  overrides: Map<string, ModelPrice[]>;
}

/** An immutable, indexed price table; built once per refresh, read for every call. */
export class PriceBook {
  private readonly byModel = new Map<string, ModelPrices>();

  constructor(prices: readonly ModelPrice[]) {
    for (const price of prices) {
      const key = modelKey(price.provider, price.model);
      let entry = this.byModel.get(key);
      if (!entry) {
        entry = { global: [], overrides: new Map() };
        this.byModel.set(key, entry);
      }
      if (price.tenantId === null) {
        entry.global.push(price);
      } else {
        const list = entry.overrides.get(price.tenantId) ?? [];
        list.push(price);
        entry.overrides.set(price.tenantId, list);
      }
    }
    for (const entry of this.byModel.values()) {
      entry.global.sort(newestFirst);
      for (const list of entry.overrides.values()) list.sort(newestFirst);
    }
  }

  /** The price in effect for the query (tenant override first), or null when the call is unpriced. */
  priceAt(query: PriceQuery): ModelPrice | null {
    const entry = this.byModel.get(modelKey(query.provider, query.model));
    if (!entry) return null;
    return inEffect(entry.overrides.get(query.tenantId), query.at) ?? inEffect(entry.global, query.at);
  }
}

/** Cost of one call's tokens at a price, in whole micros (see the billing rules above). */
export function callCost(price: ModelPrice, tokens: TokenCounts): Micros {
  const cached = min(tokens.cachedTokens, tokens.promptTokens);
  const reasoning = min(tokens.reasoningTokens, tokens.completionTokens);
  return (
    tokenCost(tokens.promptTokens - cached, price.inputPerMillion) +
    tokenCost(cached, price.cachedInputPerMillion ?? price.inputPerMillion) +
    tokenCost(tokens.completionTokens - reasoning, price.outputPerMillion) +
    tokenCost(reasoning, price.reasoningPerMillion ?? price.outputPerMillion)
  );
}

function inEffect(newestFirstPrices: readonly ModelPrice[] | undefined, at: Date): ModelPrice | null {
  const price = newestFirstPrices?.find((candidate) => candidate.effectiveFrom.getTime() <= at.getTime());
  if (!price || (price.retiredAt && price.retiredAt.getTime() <= at.getTime())) return null;
  return price;
}

function newestFirst(a: ModelPrice, b: ModelPrice): number {
  return b.effectiveFrom.getTime() - a.effectiveFrom.getTime();
}

function modelKey(provider: string, model: string): string {
  return `${provider}\u0000${model}`;
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
