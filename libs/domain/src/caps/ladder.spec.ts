import { ladderProblems, modelForAttempt } from './ladder';

describe('modelForAttempt', () => {
  const ladder = new Map([
    ['gpt-4.1', 'gpt-4.1-mini'],
    ['gpt-4.1-mini', 'gpt-4.1-nano'],
    ['loop-a', 'loop-b'],
    ['loop-b', 'loop-a'],
  ]);

  it.each([
    ['first attempt keeps the model', 'gpt-4.1', 1, 'implementer', 'gpt-4.1', 0],
    ['attempt 2 goes one step down', 'gpt-4.1', 2, 'implementer', 'gpt-4.1-mini', 1],
    ['attempt 3 goes two steps down', 'gpt-4.1', 3, 'planner', 'gpt-4.1-nano', 2],
    ['the ladder ends', 'gpt-4.1', 9, 'planner', 'gpt-4.1-nano', 2],
    ['never for the validator', 'gpt-4.1', 3, 'validator', 'gpt-4.1', 0],
    ['the validator role in any case', 'gpt-4.1', 3, 'Validator', 'gpt-4.1', 0],
    ['a model off the ladder', 'claude-sonnet-4-5', 3, 'planner', 'claude-sonnet-4-5', 0],
    ['a cycle stops', 'loop-a', 5, 'planner', 'loop-b', 1],
    ['the publisher is downgraded too', 'gpt-4.1-mini', 2, 'publisher', 'gpt-4.1-nano', 1],
  ])('%s', (_name, model, attempt, role, expected, steps) => {
    expect(modelForAttempt(ladder, model, attempt, role)).toEqual({ model: expected, steps });
  });
});

describe('ladderProblems', () => {
  const prices: Record<string, { min: bigint; max: bigint }> = {
    big: { min: 10n, max: 12n },
    mid: { min: 5n, max: 6n },
    small: { min: 1n, max: 1n },
    twin: { min: 10n, max: 10n },
  };
  const priceOf = (model: string) => prices[model] ?? null;
  const step = (model: string, cheaper_model: string) => ({ model, cheaper_model });

  it('accepts steps each to a cheaper, priced model', () => {
    expect(ladderProblems([step('big', 'mid'), step('mid', 'small')], priceOf)).toEqual([]);
  });

  it.each([
    ['a dearer model', [step('small', 'big')], 'price', 'steps[0] (small -> big): big is not cheaper than small'],
    ['as dear a model', [step('big', 'twin')], 'price', 'steps[0] (big -> twin): twin is not cheaper than big'],
    ['an unknown model', [step('big', 'ghost')], 'price', 'steps[0] (big -> ghost): no known price for ghost'],
    ['a step to itself', [step('big', 'big')], 'structure', 'steps[0] (big -> big): a model cannot step to itself'],
    [
      'a model twice',
      [step('big', 'mid'), step('big', 'small')],
      'structure',
      'steps[1] (big -> small): big already has a step',
    ],
  ])('refuses %s, naming the step', (_name, steps, kind, message) => {
    expect(ladderProblems(steps, priceOf)).toContainEqual({ step: expect.any(Number), kind, message });
  });

  it('refuses a cycle', () => {
    const problems = ladderProblems([step('big', 'mid'), step('mid', 'big')], priceOf);
    expect(problems.filter((p) => p.kind === 'structure').map((p) => p.message)).toEqual([
      'steps[0] (big): the ladder loops back to big',
      'steps[1] (mid): the ladder loops back to mid',
    ]);
  });
});
