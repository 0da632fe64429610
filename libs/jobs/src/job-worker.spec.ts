import { UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { QueueContract } from '@agentmeter/contracts';
import { JobMetrics } from './job-metrics';
import {
  assertHandlers,
  isLastAttempt,
  JobHandlersError,
  type JobHandlers,
  jobProcessor,
  JobWorker,
} from './job-worker';

const contract = {
  name: 'jobs-spec',
  jobs: {
    greet: z.object({ name: z.literal('greet'), who: z.string().min(1) }),
    sweep: z.object({ name: z.literal('sweep') }),
  },
} satisfies QueueContract;
type Jobs = typeof contract.jobs;

const warnings: unknown[] = [];
const logger = { warn: (fields: unknown) => warnings.push(fields) } as unknown as Logger;

function job(name: string, data: unknown, attemptsMade = 0, attempts = 3): Job {
  return { id: `id-${name}`, name, data, queueName: contract.name, attemptsMade, opts: { attempts } } as unknown as Job;
}

async function counted(job: string, outcome: string): Promise<number> {
  const { values } = await JobMetrics.get().jobs.get();
  return (
    values.find((v) => v.labels.queue === contract.name && v.labels.job === job && v.labels.outcome === outcome)
      ?.value ?? 0
  );
}

describe('job handlers at start-up', () => {
  const handlers: JobHandlers<Jobs> = { greet: async () => undefined, sweep: async () => undefined };

  it('accepts exactly one handler per declared job', () => {
    expect(() => assertHandlers(contract, handlers)).not.toThrow();
  });

  it('refuses a queue with a job that has no handler, naming it', () => {
    const { sweep: _sweep, ...missing } = handlers;
    expect(() => assertHandlers(contract, missing as JobHandlers<Jobs>)).toThrow(
      new JobHandlersError('jobs-spec', ['sweep'], []),
    );
    expect(() => assertHandlers(contract, missing as JobHandlers<Jobs>)).toThrow(
      'queue jobs-spec: no handler for sweep',
    );
  });

  it('refuses a handler for a job name the queue does not declare', () => {
    const extra = { ...handlers, nap: async () => undefined } as JobHandlers<Jobs>;
    expect(() => assertHandlers(contract, extra)).toThrow(
      'queue jobs-spec: handlers for jobs the queue does not declare: nap',
    );
  });

  it('refuses a handler that is not a function', () => {
    expect(() => assertHandlers(contract, { ...handlers, greet: undefined } as unknown as JobHandlers<Jobs>)).toThrow(
      'no handler for greet',
    );
  });

  it('makes the worker refuse to start before it touches Redis', () => {
    const connection = {
      duplicate: () => {
        throw new Error('connected');
      },
    } as unknown as Redis;
    const { greet: _greet, ...missing } = handlers;
    expect(
      () => new JobWorker(contract, missing as JobHandlers<Jobs>, { connection, prefix: 'p:bull', logger }),
    ).toThrow(JobHandlersError);
  });
});

describe('jobProcessor', () => {
  const greeted: unknown[] = [];
  let fail: Error | null = null;
  const process = jobProcessor(
    contract,
    {
      greet: async (data, bullJob) => {
        if (fail) throw fail;
        greeted.push({ data, id: bullJob.id });
        return `hello ${data.who}`;
      },
      sweep: async () => 'swept',
    },
    logger,
  );

  beforeEach(() => {
    greeted.length = 0;
    warnings.length = 0;
    fail = null;
  });

  it('gives the handler the parsed data and returns its result', async () => {
    const before = await counted('greet', 'completed');
    await expect(process(job('greet', { name: 'greet', who: 'ada', extra: 1 }))).resolves.toBe('hello ada');
    expect(greeted).toEqual([{ data: { name: 'greet', who: 'ada' }, id: 'id-greet' }]);
    expect(await counted('greet', 'completed')).toBe(before + 1);
  });

  it('fails a job whose data fails the schema for good, with the reason, without calling the handler', async () => {
    const before = await counted('greet', 'rejected');
    const attempt = process(job('greet', { name: 'greet', who: '' }));
    await expect(attempt).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(process(job('greet', { name: 'greet' }))).rejects.toThrow(
      'invalid data for job "greet" on queue jobs-spec: who: Invalid input: expected string, received undefined',
    );
    expect(greeted).toEqual([]);
    expect(await counted('greet', 'rejected')).toBe(before + 2);
    expect(warnings[0]).toMatchObject({ queue: 'jobs-spec', job: 'greet', job_id: 'id-greet' });
  });

  it('fails a job with an undeclared name for good, counted under `unknown`', async () => {
    const before = await counted('unknown', 'rejected');
    const attempt = process(job('nap', { name: 'nap' }));
    await expect(attempt).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(attempt).rejects.toThrow('unknown job "nap" on queue jobs-spec');
    expect(await counted('unknown', 'rejected')).toBe(before + 1);
  });

  it('rethrows a handler error unchanged, counted as a retry or, on the last attempt, a failure', async () => {
    fail = new Error('database away');
    const retries = await counted('greet', 'retry');
    const failures = await counted('greet', 'failed');
    await expect(process(job('greet', { name: 'greet', who: 'ada' }, 0, 3))).rejects.toBe(fail);
    await expect(process(job('greet', { name: 'greet', who: 'ada' }, 2, 3))).rejects.toBe(fail);
    expect(await counted('greet', 'retry')).toBe(retries + 1);
    expect(await counted('greet', 'failed')).toBe(failures + 1);
  });

  it('counts a job moved back to delayed on purpose as delayed', async () => {
    fail = Object.assign(new Error(''), { name: 'DelayedError' });
    const before = await counted('greet', 'delayed');
    await expect(process(job('greet', { name: 'greet', who: 'ada' }))).rejects.toBe(fail);
    expect(await counted('greet', 'delayed')).toBe(before + 1);
  });
});

describe('isLastAttempt', () => {
  it.each([
    [0, 1, true],
    [0, 3, false],
    [2, 3, true],
    [0, undefined, true],
  ])('attemptsMade %d of %s attempts: %s', (attemptsMade, attempts, last) => {
    expect(isLastAttempt({ attemptsMade, opts: attempts === undefined ? {} : { attempts } })).toBe(last);
  });
});
