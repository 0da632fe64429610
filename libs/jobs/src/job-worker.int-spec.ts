import { Queue } from 'bullmq';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { z } from 'zod';
import type { QueueContract } from '@agentmeter/contracts';
import { createLogger } from '@agentmeter/telemetry';
import { eventually, testEnvironment } from '@agentmeter/testing';
import { InvalidJobError } from './job-data';
import { JobQueue } from './job-queue';
import { JobWorker } from './job-worker';

/**
 * The registry against a real Redis (under this file's own key prefix): a payload that fails the schema is
 * refused at enqueue time; one that reaches the queue anyway (an older or foreign producer) fails that job
 * for good with its reason, and the worker goes on with the next good job.
 */
describe('job registry against Redis', () => {
  const contract = {
    name: 'jobs-registry',
    jobs: {
      greet: z.object({
        name: z.literal('greet'),
        who: z.string().min(1),
        trace: z.record(z.string(), z.string()).optional(),
      }),
    },
  } satisfies QueueContract;

  const logger = createLogger('jobs-test', 'silent');
  const prefix = `${testEnvironment().redisPrefix}${randomBytes(3).toString('hex')}:bull`;
  const greeted: unknown[] = [];
  let connection: Redis;
  let producer: JobQueue<typeof contract.jobs>;
  let foreign: Queue;
  let worker: JobWorker<typeof contract.jobs>;

  beforeAll(() => {
    connection = new Redis(testEnvironment().redisUrl, { maxRetriesPerRequest: null });
    producer = new JobQueue(contract, { connection, prefix, logger });
    foreign = new Queue(contract.name, { connection, prefix });
    worker = new JobWorker(
      contract,
      {
        greet: async (data) => {
          greeted.push(data);
        },
      },
      { connection, prefix, logger, concurrency: 1 },
    );
  });

  afterAll(async () => {
    await worker?.close();
    await foreign?.obliterate({ force: true });
    await Promise.all([producer?.close(), foreign?.close()]);
    connection?.disconnect();
  });

  it('refuses a bad payload at enqueue time: nothing reaches Redis', async () => {
    const bad = { who: '' } as { who: string };
    await expect(producer.add('greet', bad, { jobId: 'refused' })).rejects.toThrow(
      new InvalidJobError(
        'invalid data for job "greet" on queue jobs-registry: who: Too small: expected string to have >=1 characters',
      ),
    );
    expect(await producer.getJob('refused')).toBeUndefined();
  });

  it('fails a job whose payload fails the schema with its reason, once, and processes the next good job', async () => {
    await foreign.add('greet', { name: 'greet', who: 42 }, { jobId: 'bad', attempts: 5, backoff: 10 });
    await foreign.add('nap', { name: 'nap' }, { jobId: 'stray', attempts: 5 });
    await producer.add('greet', { who: 'ada' }, { jobId: 'good', attempts: 5 });

    await eventually(async () => expect(await (await producer.getJob('good'))?.getState()).toBe('completed'));
    expect(greeted).toEqual([{ name: 'greet', who: 'ada' }]);

    const bad = (await producer.getJob('bad'))!;
    expect(await bad.getState()).toBe('failed');
    expect(bad.failedReason).toBe(
      'invalid data for job "greet" on queue jobs-registry: who: Invalid input: expected string, received number',
    );
    expect(bad.attemptsMade).toBe(1); // not retried, although it had 5 attempts
    const stray = (await producer.getJob('stray'))!;
    expect(await stray.getState()).toBe('failed');
    expect(stray.failedReason).toBe('unknown job "nap" on queue jobs-registry');
    expect(worker.isRunning()).toBe(true);
  });
});
