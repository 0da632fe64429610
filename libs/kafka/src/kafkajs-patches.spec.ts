/* eslint-disable @typescript-eslint/no-require-imports, @typescript-eslint/no-explicit-any -- kafkajs internal */
import { patchKafkajsRequestQueue } from './kafkajs-patches';

describe('kafkajs RequestQueue patch', () => {
  const RequestQueue = require('kafkajs/src/network/requestQueue') as { prototype: any };
  const schedule = (queue: object): void => RequestQueue.prototype.scheduleCheckPendingRequests.call(queue);

  beforeAll(() => patchKafkajsRequestQueue());
  beforeEach(() => jest.useFakeTimers({ now: 1_800_000_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('arms no timer while nothing waits (no negative delay, no idle re-check loop)', () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    const queue = { throttledUntil: -1, pending: [], throttleCheckTimeoutId: null, checkPendingRequests: jest.fn() };
    schedule(queue);
    expect(queue.throttleCheckTimeoutId).toBeNull();
    expect(jest.getTimerCount()).toBe(0);
    process.off('warning', onWarning);
    expect(warnings).toEqual([]);
  });

  it('checks waiting requests when the throttle ends, or soon when only the in-flight limit holds them', () => {
    const throttled = {
      throttledUntil: Date.now() + 250,
      pending: [{}],
      throttleCheckTimeoutId: null,
      checkPendingRequests: jest.fn(),
    };
    schedule(throttled);
    jest.advanceTimersByTime(249);
    expect(throttled.checkPendingRequests).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(throttled.checkPendingRequests).toHaveBeenCalledTimes(1);

    const busy = { throttledUntil: -1, pending: [{}], throttleCheckTimeoutId: null, checkPendingRequests: jest.fn() };
    schedule(busy);
    schedule(busy); // one timer at a time
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(10);
    expect(busy.checkPendingRequests).toHaveBeenCalledTimes(1);
  });
});
