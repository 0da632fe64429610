import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { logConnectionErrors, RecoveryLoop } from './connections';

function fakeLogger() {
  const lines: Array<{ level: string; msg: string }> = [];
  const log = (level: string) => (_fields: unknown, msg: string) => lines.push({ level, msg });
  return { lines, logger: { warn: log('warn'), info: log('info') } as unknown as Logger };
}

describe('logConnectionErrors', () => {
  it("listens to 'error' (an emit no longer throws) and logs an outage's repeated error once", () => {
    const { lines, logger } = fakeLogger();
    const connection = logConnectionErrors(new EventEmitter(), logger, 'redis');
    for (let i = 0; i < 5; i++) connection.emit('error', new Error('connect ECONNREFUSED 127.0.0.1:6379'));
    connection.emit('error', new Error('Connection is closed.'));
    expect(lines.map((line) => line.msg)).toEqual(['redis: connection error', 'redis: connection error']);
  });
});

describe('RecoveryLoop', () => {
  it('runs when a watched connection is ready again after a loss, and reports whether the last run failed', async () => {
    const { logger } = fakeLogger();
    let fail = true;
    const runs: number[] = [];
    const loop = new RecoveryLoop(
      'test',
      3_600_000,
      async () => {
        runs.push(runs.length);
        if (fail) throw new Error('Redis is away');
      },
      logger,
    );
    const connection = new EventEmitter();
    loop.start([connection]);
    connection.emit('ready'); // the first connection: nothing was lost
    expect(runs).toEqual([]);
    connection.emit('close');
    connection.emit('ready');
    await loop.kick(); // joins the run in progress, then one more
    expect(loop.healthy()).toBe(false);
    fail = false;
    await loop.kick();
    expect(loop.healthy()).toBe(true);
    expect(runs.length).toBeGreaterThanOrEqual(2);
    await loop.stop();
    const before = runs.length;
    await loop.kick();
    expect(runs.length).toBe(before);
  });
});
