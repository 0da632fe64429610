import type { Logger } from 'pino';
import { BULLMQ_CONNECTION, createRedis } from './redis';

// Nothing connects: lazyConnect, and no command is sent.
const URL = 'redis://127.0.0.1:6379';

describe('createRedis', () => {
  it('keeps every connection error from being thrown, and logs it where a logger is given', () => {
    const warned: unknown[][] = [];
    const logger = { warn: (...args: unknown[]) => warned.push(args) } as unknown as Logger;
    const logged = createRedis(URL, { name: 'redis (counters)', logger, lazyConnect: true });
    const quiet = createRedis(URL, { name: 'redis (rate limit)', logger: null, lazyConnect: true });
    try {
      expect(() => logged.emit('error', new Error('connect ECONNREFUSED'))).not.toThrow();
      expect(() => quiet.emit('error', new Error('connect ECONNREFUSED'))).not.toThrow();
      expect(warned).toHaveLength(1);
      expect(warned[0]![1]).toBe('redis (counters): connection error');
    } finally {
      logged.disconnect();
      quiet.disconnect();
    }
  });

  it('passes the options through: BullMQ connections wait for a reconnect, key prefixes stay', () => {
    const queue = createRedis(URL, { ...BULLMQ_CONNECTION, name: 'redis', logger: null, lazyConnect: true });
    const prefixed = createRedis(URL, { name: 'redis', logger: null, lazyConnect: true, keyPrefix: 'am:q:' });
    try {
      expect(queue.options.maxRetriesPerRequest).toBeNull();
      expect(prefixed.options.keyPrefix).toBe('am:q:');
      expect(prefixed.options.maxRetriesPerRequest).toBe(20);
    } finally {
      queue.disconnect();
      prefixed.disconnect();
    }
  });
});
