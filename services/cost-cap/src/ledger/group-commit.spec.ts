import { GroupCommit } from './group-commit';

/** A write the test completes by hand, recording the batches it was given. */
function controlledWrite() {
  const batches: number[][] = [];
  const pending: Array<{ resolve: (value: string[]) => void; reject: (error: Error) => void; items: number[] }> = [];
  const write = (items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      batches.push(items);
      pending.push({ resolve, reject, items });
    });
  const finish = (i: number) => pending[i]!.resolve(pending[i]!.items.map((item) => `row-${item}`));
  return { batches, pending, write, finish };
}

/** Lets the promise callbacks of a finished write run (its callers resolved, the next batch started). */
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('GroupCommit', () => {
  it('writes a lone item at once, and batches what arrives while writes are in flight', async () => {
    const w = controlledWrite();
    const group = new GroupCommit<number, string>(w.write, 100, 1);
    const first = group.add(1);
    expect(w.batches).toEqual([[1]]);
    const rest = [2, 3, 4].map((item) => group.add(item));
    expect(w.batches).toEqual([[1]]);
    w.finish(0);
    expect(await first).toBe('row-1');
    await tick();
    expect(w.batches).toEqual([[1], [2, 3, 4]]);
    w.finish(1);
    expect(await Promise.all(rest)).toEqual(['row-2', 'row-3', 'row-4']);
  });

  it('keeps batches within the size limit and the writes in flight within theirs', async () => {
    const w = controlledWrite();
    const group = new GroupCommit<number, string>(w.write, 2, 2);
    const all = [1, 2, 3, 4, 5, 6, 7].map((item) => group.add(item));
    expect(w.batches).toEqual([[1], [2]]);
    w.finish(0);
    await tick();
    expect(w.batches).toEqual([[1], [2], [3, 4]]);
    w.finish(1);
    w.finish(2);
    await tick();
    expect(w.batches).toEqual([[1], [2], [3, 4], [5, 6], [7]]);
    w.finish(3);
    w.finish(4);
    expect(await Promise.all(all)).toEqual(['row-1', 'row-2', 'row-3', 'row-4', 'row-5', 'row-6', 'row-7']);
  });

  it('fails every item of a failed batch, and only those; later items are written', async () => {
    const w = controlledWrite();
    const group = new GroupCommit<number, string>(w.write, 10, 1);
    const first = group.add(1);
    const failing = [group.add(2), group.add(3)];
    w.finish(0);
    await first;
    await tick();
    w.pending[1]!.reject(new Error('connection lost'));
    for (const item of failing) await expect(item).rejects.toThrow('connection lost');
    await tick();
    const after = group.add(4);
    expect(w.batches).toEqual([[1], [2, 3], [4]]);
    w.finish(2);
    expect(await after).toBe('row-4');
  });
});
