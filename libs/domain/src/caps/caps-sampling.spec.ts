import { samplingVerdict } from './caps-sampling';

describe('samplingVerdict', () => {
  const policy = { failureThreshold: 0.2, minSamples: 5 };
  it.each([
    ['no samples', 0, 0, false],
    ['too few samples', 4, 4, false],
    ['below the threshold', 10, 1, false],
    ['exactly at the threshold', 10, 2, false],
    ['above the threshold', 10, 3, true],
    ['all failed', 5, 5, true],
  ])('%s', (_name, samples, failures, freeze) => {
    expect(samplingVerdict(samples, failures, policy).freeze).toBe(freeze);
  });

  it('reports the failure rate', () => {
    expect(samplingVerdict(8, 2, policy)).toEqual({ freeze: true, samples: 8, failures: 2, failureRate: 0.25 });
  });
});
