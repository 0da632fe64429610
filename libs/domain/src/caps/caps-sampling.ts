/**
 * Validator sampling (docs/cost-cap.md "Crossings, commands and alerts"): a daily sample of proofs runs the Validator
 * in strict mode; when the share of failed samples of a playbook is above the threshold, the Publisher is
 * frozen for that playbook. Too few samples decide nothing (one failure of one sample is not a trend).
 */

export interface SamplingPolicy {
  /** Failure share above which the Publisher freezes, 0..1 (exclusive: exactly at it does not freeze). */
  failureThreshold: number;
  minSamples: number;
}

export interface SamplingVerdict {
  freeze: boolean;
  samples: number;
  failures: number;
  /** failures / samples, 0 when there are none. */
  failureRate: number;
}

export function samplingVerdict(samples: number, failures: number, policy: SamplingPolicy): SamplingVerdict {
  const failureRate = samples === 0 ? 0 : failures / samples;
  // Compare in integers (failures / samples > threshold) so 0.2 of 10 samples is exactly 2 failures.
  const thresholdPpm = Math.round(policy.failureThreshold * 1_000_000);
  const above = failures * 1_000_000 > thresholdPpm * samples;
  return { freeze: samples >= policy.minSamples && above, samples, failures, failureRate };
}
