import type { Clock } from '@agentmeter/domain';
import { CountersRebuildingError } from '../counters/counters.store';
import type { Crossing, CrossingsService } from '../crossings/crossings.service';
import type { CostCapDatabase, Tx } from '../db/database';
import type { OutboxPublisher } from '../outbox/outbox.publisher';
import { CountersTransaction } from './counters-transaction';
import type { RebuildService } from './rebuild.service';

/** A database that records what each transaction did, committed or rolled back. */
class FakeDatabase {
  log: string[] = [];
  async withCounters<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    this.log.push('begin+lock');
    try {
      const result = await work({} as Tx);
      this.log.push('commit');
      return result;
    } catch (error) {
      this.log.push('rollback');
      throw error;
    }
  }
}

function setup(claimable: Set<string>) {
  const db = new FakeDatabase();
  const committed: Array<{ attempted: Crossing[]; claimed: Crossing[] }> = [];
  let kicks = 0;
  const crossings = {
    claim: async (_tx: Tx, attempted: Crossing[]) => {
      db.log.push(`claim ${attempted.map((c) => c.id).join(',')}`);
      return attempted.filter((c) => claimable.has(c.id));
    },
    committed: (attempted: Crossing[], claimed: Crossing[]) => committed.push({ attempted, claimed }),
  };
  const rebuild = {
    async retrying<T>(work: () => Promise<T>): Promise<T> {
      try {
        return await work();
      } catch (error) {
        if (!(error instanceof CountersRebuildingError)) throw error;
        db.log.push('rebuilt');
        return work();
      }
    },
  };
  const step = new CountersTransaction(
    db as unknown as CostCapDatabase,
    crossings as unknown as CrossingsService,
    { kick: () => (kicks += 1) } as unknown as OutboxPublisher,
    rebuild as unknown as RebuildService,
    { now: () => new Date('2026-12-07T10:00:00Z') } as Clock,
  );
  return { step, db, committed, kicks: () => kicks };
}

const crossing = (id: string) => ({ id }) as Crossing;

describe('CountersTransaction', () => {
  it('claims the crossings in the transaction of the work, then counts them and wakes the outbox', async () => {
    const { step, db, committed, kicks } = setup(new Set(['a']));
    const result = await step.run(async () => {
      db.log.push('work');
      return { value: 7, crossings: [crossing('a'), crossing('b')] };
    });
    expect(result).toEqual({ value: 7, claimed: [crossing('a')] });
    expect(db.log).toEqual(['begin+lock', 'work', 'claim a,b', 'commit']);
    expect(committed).toEqual([{ attempted: [crossing('a'), crossing('b')], claimed: [crossing('a')] }]);
    expect(kicks()).toBe(1);
  });

  it('does not wake the outbox when nothing was claimed', async () => {
    const { step, kicks } = setup(new Set());
    await step.run(async () => ({ value: null, crossings: [crossing('a')] }));
    expect(kicks()).toBe(0);
  });

  it('runs the whole step again after a rebuild; once() does not', async () => {
    const { step, db } = setup(new Set());
    let attempts = 0;
    const work = async () => {
      attempts += 1;
      if (attempts === 1) throw new CountersRebuildingError();
      return { value: attempts };
    };
    await expect(step.run(work)).resolves.toEqual({ value: 2, claimed: [] });
    expect(db.log).toEqual(['begin+lock', 'rollback', 'rebuilt', 'begin+lock', 'claim ', 'commit']);
    attempts = 0;
    await expect(step.once(work)).rejects.toBeInstanceOf(CountersRebuildingError);
  });
});
