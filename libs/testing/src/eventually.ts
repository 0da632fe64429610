import { setTimeout as delay } from 'node:timers/promises';

/**
 * Re-checks a condition until it holds or the time budget runs out, then fails with the last reason.
 * This waits on a condition (offsets committed, rows present), never for a fixed time.
 */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await delay(intervalMs);
    }
  }
}
