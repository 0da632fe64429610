import { performance } from 'node:perf_hooks';

/** One measured cell: how many operations finished in how long, and their latency percentiles (ms). */
export interface Cell {
  ops: number;
  seconds: number;
  rate: number;
  p50: number;
  p99: number;
}

/**
 * Closed loop: `concurrency` clients, each starting its next operation when the previous one answered,
 * until `seconds` have passed. An operation that throws ends the measurement with its error.
 */
export async function measureClosedLoop(
  operation: (client: number) => Promise<void>,
  concurrency: number,
  seconds: number,
): Promise<Cell> {
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, client) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await operation(client);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { ops: latencies.length, seconds: elapsed, rate: latencies.length / elapsed, p50: at(0.5), p99: at(0.99) };
}

/** The middle value (the upper one of an even count): what a table of repeated rounds reports. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of nothing');
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}
