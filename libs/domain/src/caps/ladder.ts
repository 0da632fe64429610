/**
 * Model downgrade on retry (docs/cost-cap.md "Caps and decisions": model routing may downgrade to cheaper models on
 * retry, except the Validator). A tenant's ladder maps a model to its cheaper sibling. Attempt 1 uses the
 * requested model; attempt n >= 2 goes n - 1 steps down the ladder, stopping where it ends. The Validator
 * role is never downgraded (its verdict must not depend on budget). A ladder with a cycle stops at the
 * first model seen twice.
 */

const VALIDATOR_ROLE = 'validator';

export interface LadderChoice {
  model: string;
  /** Steps taken down the ladder (0: the requested model). */
  steps: number;
}

export function modelForAttempt(
  ladder: ReadonlyMap<string, string>,
  model: string,
  attempt: number,
  role: string,
): LadderChoice {
  if (attempt < 2 || role.toLowerCase() === VALIDATOR_ROLE) return { model, steps: 0 };
  const seen = new Set([model]);
  let current = model;
  let steps = 0;
  while (steps < attempt - 1) {
    const cheaper = ladder.get(current);
    if (cheaper === undefined || seen.has(cheaper)) break;
    seen.add(cheaper);
    current = cheaper;
    steps += 1;
  }
  return { model: current, steps };
}

export interface LadderStep {
  model: string;
  cheaper_model: string;
}

/** What a model costs for a reference call, over the providers that price it (micro-USD). */
export interface ReferencePrice {
  min: bigint;
  max: bigint;
}

export interface LadderProblem {
  /** Index of the step in the request. */
  step: number;
  /** structure: a model twice, a step to itself, a cycle; price: an unknown or not cheaper model. */
  kind: 'structure' | 'price';
  message: string;
}

/**
 * The problems of a ladder, empty when it is valid: every step goes to a model that is cheaper whatever the
 * provider (its dearest reference price below the cheapest of the model it replaces), both with a known
 * price; a model has one step; no step leads back to a model already on its path.
 */
export function ladderProblems(
  steps: readonly LadderStep[],
  priceOf: (model: string) => ReferencePrice | null,
): LadderProblem[] {
  const problems: LadderProblem[] = [];
  const next = new Map<string, string>();
  steps.forEach((step, i) => {
    const at = `steps[${i}] (${step.model} -> ${step.cheaper_model})`;
    if (step.model === step.cheaper_model) {
      problems.push({ step: i, kind: 'structure', message: `${at}: a model cannot step to itself` });
    } else if (next.has(step.model)) {
      problems.push({ step: i, kind: 'structure', message: `${at}: ${step.model} already has a step` });
    } else {
      next.set(step.model, step.cheaper_model);
    }
  });
  steps.forEach((step, i) => {
    const seen = new Set([step.model]);
    for (let model = next.get(step.model); model !== undefined; model = next.get(model)) {
      if (seen.has(model)) {
        problems.push({
          step: i,
          kind: 'structure',
          message: `steps[${i}] (${step.model}): the ladder loops back to ${model}`,
        });
        break;
      }
      seen.add(model);
    }
    if (step.model === step.cheaper_model) return;
    const at = `steps[${i}] (${step.model} -> ${step.cheaper_model})`;
    const from = priceOf(step.model);
    const to = priceOf(step.cheaper_model);
    if (!from || !to) {
      const unknown = [!from && step.model, !to && step.cheaper_model].filter(Boolean).join(' and ');
      problems.push({ step: i, kind: 'price', message: `${at}: no known price for ${unknown}` });
    } else if (to.max >= from.min) {
      problems.push({
        step: i,
        kind: 'price',
        message: `${at}: ${step.cheaper_model} is not cheaper than ${step.model}`,
      });
    }
  });
  return problems;
}
