import { modelForAttempt } from './ladder';

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
