/**
 * Model downgrade on retry (seed 001 "Cost controls": model routing may downgrade to cheaper models on
 * retry, except the Validator). A tenant's ladder maps a model to its cheaper sibling. Attempt 1 uses the
 * requested model; attempt n >= 2 goes n - 1 steps down the ladder, stopping where it ends. The Validator
 * role is never downgraded (its verdict must not depend on budget). A ladder with a cycle stops at the
 * first model seen twice.
 */

export const VALIDATOR_ROLE = 'validator';

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
