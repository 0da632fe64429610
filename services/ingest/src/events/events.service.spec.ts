import { AgentEvent as AgentEventSchema, type AgentEvent } from '@agentmeter/contracts';
import type { PartitionManager } from '@agentmeter/database';
import { generateWorkload, testRedactor } from '@agentmeter/testing';
import { metricsRegistry } from '@agentmeter/telemetry';
import type { PricingService } from '../pricing/pricing.service';
import type { BatchWrite, EventsRepository } from './events.repository';
import { EventsService } from './events.service';
import { IngestMetrics } from './ingest.metrics';

const events = generateWorkload({
  seed: 7,
  tenants: 1,
  projectsPerTenant: 1,
  runsPerProject: 2,
  start: new Date('2026-11-25T10:00:00Z'),
}).events.map(({ key: _key, ...event }) => AgentEventSchema.parse(event) as AgentEvent);

const metrics = new IngestMetrics();

/** EventsService over a recording repository; `stored` holds the keys the "database" has. */
function harness(options: { stored?: AgentEvent[]; failWith?: string; owners?: Map<string, string> } = {}) {
  const stored = new Set((options.stored ?? []).map((e) => `${e.source}/${e.id}`));
  const calls = { storeNew: [] as BatchWrite[], storeDeduplicated: [] as BatchWrite[], days: [] as string[][] };
  let forgotten = 0;
  const repository = {
    ensureTenantsAndProjects: () => Promise.resolve(),
    // Every run id is claimed by the tenant that names it first.
    claimRuns: (claims: Map<string, string>) => Promise.resolve(new Map([...claims, ...(options.owners ?? [])])),
    runUsers: () => Promise.resolve(new Map<string, string>()),
    runsWithCallsWithoutUser: () => Promise.resolve(new Set<string>()),
    storeNew: (batch: BatchWrite) => {
      calls.storeNew.push(batch);
      if (options.failWith) return Promise.reject(Object.assign(new Error('failed'), { code: options.failWith }));
      if (batch.events.some((e) => stored.has(`${e.source}/${e.id}`))) {
        return Promise.reject(Object.assign(new Error('duplicate key'), { code: '23505' }));
      }
      return Promise.resolve();
    },
    storeDeduplicated: (all: AgentEvent[], project: (fresh: AgentEvent[]) => BatchWrite) => {
      const fresh = all.filter((e) => !stored.has(`${e.source}/${e.id}`));
      calls.storeDeduplicated.push(project(fresh));
      return Promise.resolve(fresh);
    },
  } as unknown as EventsRepository;
  const partitions = {
    ensureDays: (days: Iterable<string>) => {
      calls.days.push([...days]);
      return Promise.resolve();
    },
    forget: () => {
      forgotten += 1;
    },
  } as unknown as PartitionManager;
  const pricing = { cost: () => ({ micros: 1_000n, source: 'computed' }) } as unknown as PricingService;
  return {
    service: new EventsService(repository, partitions, metrics, pricing, testRedactor()),
    calls,
    forgotten: () => forgotten,
  };
}

async function counted(outcome: 'stored' | 'duplicate'): Promise<number> {
  const metric = await metricsRegistry.getSingleMetric('agentmeter_ingest_events_total')!.get();
  return metric.values.filter((v) => v.labels.outcome === outcome).reduce((sum, v) => sum + v.value, 0);
}

describe('EventsService', () => {
  it('writes a batch of new events once, projected before the write', async () => {
    const { service, calls } = harness();
    const before = await counted('stored');
    await service.ingest([...events, events[0]!]);
    expect(calls.storeNew).toHaveLength(1);
    expect(calls.storeNew[0]!.events).toHaveLength(events.length);
    expect(calls.storeNew[0]!.projection.runs.map((r) => r.runId).sort()).toEqual(
      [...new Set(events.map((e) => ('run_id' in e.data ? e.data.run_id : '')))].sort(),
    );
    expect(calls.storeDeduplicated).toHaveLength(0);
    expect((await counted('stored')) - before).toBe(events.length);
  });

  it('writes a redelivered batch again with only its new events projected', async () => {
    const half = events.slice(0, Math.floor(events.length / 2));
    const { service, calls } = harness({ stored: half });
    const [stored, duplicate] = [await counted('stored'), await counted('duplicate')];
    await service.ingest(events);
    expect(calls.storeNew).toHaveLength(1);
    expect(calls.storeDeduplicated).toHaveLength(1);
    expect(calls.storeDeduplicated[0]!.events).toEqual(events.slice(half.length));
    expect((await counted('stored')) - stored).toBe(events.length - half.length);
    expect((await counted('duplicate')) - duplicate).toBe(half.length);
  });

  it('forgets the known partitions when a row has none (dropped by retention meanwhile)', async () => {
    const { service, forgotten } = harness({ failWith: '23514' });
    await expect(service.ingest(events)).rejects.toThrow('failed');
    expect(forgotten()).toBe(1);
  });

  it('asks for the UTC day of every event time, whatever its offset', async () => {
    const { service, calls } = harness();
    const late = { ...events[0]!, id: 'late', time: '2026-11-25T23:30:00-05:00' } as AgentEvent;
    await service.ingest([{ ...events[0]!, time: '2026-11-25T23:30:00Z' } as AgentEvent, late]);
    expect(calls.days[0]!.sort()).toEqual(['2026-11-25', '2026-11-26']);
  });

  it("refuses another tenant's events for a run id it does not own, and stores the rest", async () => {
    const runOf = (e: AgentEvent) => (e.data as { run_id?: string }).run_id;
    const runId = runOf(events[0]!)!;
    const { service, calls } = harness({ owners: new Map([[runId, 'someone-else']]) });
    const rejected = await service.ingest(events);
    const refused = events.filter((e) => runOf(e) === runId);
    expect(refused.length).toBeGreaterThan(0);
    expect(rejected.map((r) => r.event)).toEqual(refused);
    expect(rejected.every((r) => r.reason.startsWith('run_owned_by_another_tenant:'))).toBe(true);
    expect(calls.storeNew[0]!.events.every((e) => runOf(e) !== runId)).toBe(true);
    expect(calls.storeNew[0]!.events).toHaveLength(events.length - refused.length);
  });
});
