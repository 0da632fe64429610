import { Counter, Histogram } from 'prom-client';
import { metricsRegistry } from '@agentmeter/telemetry';

/**
 * How a processed job ended: `completed`; `retry` (it threw and has attempts left); `failed` (it threw on its
 * last attempt, or gave up with an UnrecoverableError); `rejected` (its name or data failed the queue's
 * contract: failed at once, never retried); `delayed` (the handler moved it back to delayed on purpose).
 */
export type JobOutcome = 'completed' | 'retry' | 'failed' | 'rejected' | 'delayed';

/**
 * Metrics every JobWorker exports, whatever the service, labelled by queue and job name (an undeclared job
 * name counts as `unknown`, so a stray producer cannot grow the label set). Created once per process.
 */
export class JobMetrics {
  private static instance: JobMetrics | undefined;

  static get(): JobMetrics {
    return (JobMetrics.instance ??= new JobMetrics());
  }

  readonly jobs = new Counter({
    name: 'agentmeter_jobs_total',
    help: 'BullMQ jobs processed, by queue, job name and outcome (completed, retry, failed, rejected, delayed).',
    labelNames: ['queue', 'job', 'outcome'] as const,
    registers: [metricsRegistry],
  });
  readonly duration = new Histogram({
    name: 'agentmeter_job_duration_seconds',
    help: 'Time of one attempt of a BullMQ job, by queue, job name and outcome.',
    labelNames: ['queue', 'job', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
    registers: [metricsRegistry],
  });

  observe(queue: string, job: string, outcome: JobOutcome, seconds: number): void {
    this.jobs.inc({ queue, job, outcome });
    this.duration.observe({ queue, job, outcome }, seconds);
  }
}
