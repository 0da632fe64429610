import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Counters, DimensionLimits, ReservationKind } from '@agentmeter/domain';
import { createRedis } from '@agentmeter/telemetry';
import { CostCapConfig } from '../config';
import { LOGGER } from '../logger';
import { LOAD, RESERVE, SETTLE, SET_STOP } from './counters.lua';

/** Thrown when Redis has no counter epoch: the counters must be rebuilt before anything is counted. */
export class CountersRebuildingError extends Error {
  readonly code = 'REBUILDING';
  constructor() {
    super('spend counters are being rebuilt from the ledger; retry shortly');
  }
}

/** A counter scope: one run's key, or one tenant-day's. */
export type CounterScope =
  { kind: 'run'; tenantId: string; runId: string } | { kind: 'day'; tenantId: string; day: string };

/**
 * Thrown when a script needs a counter key Redis does not have (lost, expired, or never written): the
 * caller loads those scopes from the ledger (RebuildService.load) and tries again. An empty list: a key
 * was loaded again under a hold in flight (see AdmissionService), nothing to load but retry.
 */
export class CountersMissingError extends Error {
  readonly code = 'COUNTERS_MISSING';
  constructor(readonly scopes: CounterScope[]) {
    super('spend counters of a run or tenant-day are missing in Redis; they are loaded from the ledger');
  }
}

export type ReserveStatus = 'ALLOW' | 'PARTIAL' | 'DENY_STOPPED' | 'DENY_REACHED' | 'DENY_INSUFFICIENT';

export interface ReserveResult {
  status: ReserveStatus;
  /** 1..4: run_tokens, run_cost, run_external, tenant_cost; 5: the run's wall time; 0: none. */
  dimension: number;
  granted: bigint;
  counters: Counters;
  /** The counter generation the hold was made in (see AdmissionService: a reservation row written after
   *  a rebuild started is only valid if the epoch did not change). */
  epoch: string;
  /** The generations of the run and day keys the hold was made on. */
  generations: { run: string; day: string };
}

export interface SettleResult {
  released: boolean;
  applied: boolean;
  counters: Counters;
  stopped: boolean;
}

export interface ReserveArgs {
  reservationId: string;
  tenantId: string;
  runId: string;
  day: string;
  kind: ReservationKind;
  tokens: bigint;
  money: bigint;
  partial: boolean;
  limits: DimensionLimits;
  expiresAt: Date;
}

export interface SettleArgs {
  tenantId: string;
  runId: string;
  day: string;
  /** Release this reservation's hold if it is still held. */
  reservationId: string | null;
  /** Add this ledger entry to the committed counters (once per epoch). */
  apply: { entryKey: string; tokens: bigint; cost: bigint; external: bigint } | null;
}

/** What a rebuild writes: committed sums and open holds, straight from PostgreSQL. */
export interface CounterSnapshot {
  runs: Array<{
    tenantId: string;
    runId: string;
    tokens: bigint;
    cost: bigint;
    external: bigint;
    heldTokens: bigint;
    heldCost: bigint;
    heldExternal: bigint;
    stop: string | null;
  }>;
  days: Array<{ tenantId: string; day: string; cost: bigint; heldCost: bigint }>;
  reservations: SnapshotHold[];
}

/** An unsettled reservation's hold, as PostgreSQL has it. */
export interface SnapshotHold {
  reservationId: string;
  tenantId: string;
  runId: string;
  day: string;
  tokens: bigint;
  cost: bigint;
  external: bigint;
  expiresAt: Date;
}

/** One counter key as the ledger has it, with the holds it counts (RebuildService.load). */
export type ScopeLoad =
  | {
      kind: 'run';
      tenantId: string;
      runId: string;
      tokens: bigint;
      cost: bigint;
      external: bigint;
      stop: string | null;
      holds: SnapshotHold[];
    }
  | { kind: 'day'; tenantId: string; day: string; cost: bigint; holds: SnapshotHold[] };

const DAY_TTL_S = 3 * 86_400;
/** Markers outlive any retry of the same entry (HTTP retries, Kafka redeliveries). */
const MARKER_TTL_S = 2 * 86_400;
/** A hold lasts until settled (docs/cost-cap.md): its key outlives any reasonable call, like its run's key. */
const HOLD_TTL_S = 30 * 86_400;

interface CounterCommands {
  costCapReserve(...args: Array<string | number>): Promise<string[]>;
  costCapSettle(...args: Array<string | number>): Promise<Array<string | number>>;
  costCapLoad(...args: Array<string | number>): Promise<string[]>;
  costCapStop(...args: Array<string | number>): Promise<string>;
}

/**
 * Redis counters of cost-cap. Holds its own connection; the Lua scripts are registered with
 * defineCommand (EVALSHA, falling back to EVAL once after a SCRIPT FLUSH or a Redis restart).
 */
@Injectable()
export class CountersStore implements OnApplicationShutdown {
  readonly redis: Redis & CounterCommands;
  private readonly prefix: string;
  private readonly runTtlS: number;

  constructor(@Inject(CostCapConfig) config: CostCapConfig, @Inject(LOGGER) logger: Logger) {
    this.prefix = `${config.REDIS_KEY_PREFIX}cc:`;
    this.runTtlS = config.COST_CAP_RUN_IDLE_DAYS * 86_400;
    // While Redis is away a command fails after 3 reconnection attempts (MaxRetriesPerRequestError): the
    // request is answered 503 + Retry-After (libs/http), never left waiting for the whole outage. Commands of
    // concurrent requests issued in the same tick go out in one write (auto-pipelining).
    this.redis = createRedis(config.REDIS_URL, {
      maxRetriesPerRequest: 3,
      lazyConnect: false,
      enableAutoPipelining: true,
      name: 'redis (counters)',
      logger,
    }) as Redis & CounterCommands;
    this.redis.defineCommand('costCapReserve', { numberOfKeys: 5, lua: RESERVE });
    this.redis.defineCommand('costCapSettle', { numberOfKeys: 6, lua: SETTLE });
    this.redis.defineCommand('costCapLoad', { numberOfKeys: 2, lua: LOAD });
    this.redis.defineCommand('costCapStop', { numberOfKeys: 2, lua: SET_STOP });
  }

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }

  // Keys. Tenant ids are length-prefixed so "a:b" + "c" and "a" + "b:c" never meet.
  get epochKey(): string {
    return `${this.prefix}epoch`;
  }
  get expiryKey(): string {
    return `${this.prefix}resv-expiry`;
  }
  runKey(tenantId: string, runId: string): string {
    return `${this.prefix}run:${tenantId.length}:${tenantId}:${runId}`;
  }
  dayKey(tenantId: string, day: string): string {
    return `${this.prefix}day:${tenantId.length}:${tenantId}:${day}`;
  }
  reservationKey(id: string): string {
    return `${this.prefix}resv:${id}`;
  }
  private keyLockKey(tenantId: string, idempotencyKey: string): string {
    const hash = createHash('sha1').update(idempotencyKey).digest('hex');
    return `${this.prefix}idem:${tenantId.length}:${tenantId}:${hash}`;
  }
  markerKey(entryKey: string): string {
    return `${this.prefix}applied:${createHash('sha1').update(entryKey).digest('hex')}`;
  }

  async reserve(args: ReserveArgs): Promise<ReserveResult> {
    const limit = (value: bigint | null) => (value === null ? '' : value.toString());
    const reply = await this.redis.costCapReserve(
      this.epochKey,
      this.runKey(args.tenantId, args.runId),
      this.dayKey(args.tenantId, args.day),
      this.reservationKey(args.reservationId),
      this.expiryKey,
      args.reservationId,
      args.kind,
      args.tokens.toString(),
      args.money.toString(),
      args.partial ? '1' : '0',
      limit(args.limits.run_tokens),
      limit(args.limits.run_cost),
      limit(args.limits.run_external),
      limit(args.limits.tenant_cost),
      args.expiresAt.getTime(),
      this.runTtlS,
      DAY_TTL_S,
      Math.max(HOLD_TTL_S, this.runTtlS),
    );
    if (reply[0] === 'REBUILD') throw new CountersRebuildingError();
    if (reply[0] === 'MISSING') throw this.missing(reply, args.tenantId, args.runId, args.day);
    const n = reply.slice(0, 11).map((value, index) => (index === 0 ? 0n : BigInt(value ?? 0)));
    return {
      epoch: reply[11]!,
      generations: { run: reply[12]!, day: reply[13]! },
      status: reply[0] as ReserveStatus,
      dimension: Number(reply[1]),
      granted: n[2]!,
      counters: {
        run_tokens: { committed: n[3]!, reserved: n[4]! },
        run_cost: { committed: n[5]!, reserved: n[6]! },
        run_external: { committed: n[7]!, reserved: n[8]! },
        tenant_cost: { committed: n[9]!, reserved: n[10]! },
      },
    };
  }

  async settle(args: SettleArgs): Promise<SettleResult> {
    const [command, args_] = this.settleCommand(args);
    return this.parseSettle(await this.redis.costCapSettle(...command, ...args_), args);
  }

  /** Many settles in one round trip (a consumer batch). */
  async settleMany(list: SettleArgs[]): Promise<SettleResult[]> {
    if (list.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const args of list) {
      const [keys, argv] = this.settleCommand(args);
      // Queued on the pipeline (resolved by exec below), not sent on its own.
      void (pipeline as unknown as CounterCommands).costCapSettle(...keys, ...argv);
    }
    const results = (await pipeline.exec()) ?? [];
    const missing: CounterScope[] = [];
    const settled = results.map(([error, reply], i) => {
      if (error) throw error;
      try {
        return this.parseSettle(reply as Array<string | number>, list[i]!);
      } catch (failure) {
        if (!(failure instanceof CountersMissingError)) throw failure;
        missing.push(...failure.scopes);
        return null;
      }
    });
    // Nothing was changed for a settle that lacked a key; the caller's transaction is retried after the load.
    if (missing.length > 0) throw new CountersMissingError(missing);
    return settled as SettleResult[];
  }

  private settleCommand(args: SettleArgs): [string[], Array<string | number>] {
    const keys = [
      this.epochKey,
      this.runKey(args.tenantId, args.runId),
      this.dayKey(args.tenantId, args.day),
      this.reservationKey(args.reservationId ?? 'none'),
      this.expiryKey,
      this.markerKey(args.apply?.entryKey ?? 'none'),
    ];
    const argv = [
      args.reservationId ?? '',
      args.apply ? '1' : '0',
      (args.apply?.tokens ?? 0n).toString(),
      (args.apply?.cost ?? 0n).toString(),
      (args.apply?.external ?? 0n).toString(),
      MARKER_TTL_S,
      this.runTtlS,
      DAY_TTL_S,
    ];
    return [keys, argv];
  }

  async setStop(tenantId: string, runId: string, reason: string | null): Promise<void> {
    const reply = await this.redis.costCapStop(this.epochKey, this.runKey(tenantId, runId), reason ?? '', this.runTtlS);
    if (reply === 'REBUILD') throw new CountersRebuildingError();
  }

  /** Current counters of a run and tenant-day, without changing them (state pages, explanations). */
  async read(tenantId: string, runId: string | null, day: string): Promise<{ counters: Counters; stopped: boolean }> {
    const pipeline = this.redis.pipeline();
    pipeline.hmget(
      runId === null ? `${this.prefix}none` : this.runKey(tenantId, runId),
      'tc',
      'tr',
      'cc',
      'cr',
      'ec',
      'er',
      'stop',
    );
    pipeline.hmget(this.dayKey(tenantId, day), 'cc', 'cr');
    const replies = ((await pipeline.exec()) ?? []) as Array<[Error | null, Array<string | null>]>;
    for (const [error] of replies) if (error) throw error;
    const run = replies[0]![1];
    const dayValues = replies[1]![1];
    const v = (value: string | null | undefined) => BigInt(value ?? 0);
    return {
      counters: {
        run_tokens: { committed: v(run[0]), reserved: v(run[1]) },
        run_cost: { committed: v(run[2]), reserved: v(run[3]) },
        run_external: { committed: v(run[4]), reserved: v(run[5]) },
        tenant_cost: { committed: v(dayValues[0]), reserved: v(dayValues[1]) },
      },
      stopped: Boolean(run[6]),
    };
  }

  /**
   * Takes the lock of one idempotency key of a tenant for at most `ttlMs`, so that requests repeating a key
   * are decided one after the other; returns its token, or null when another request holds it. Only an
   * optimisation of the ordering: the unique index in PostgreSQL still decides which reservation stands.
   */
  async lockIdempotencyKey(tenantId: string, idempotencyKey: string, ttlMs: number): Promise<string | null> {
    const token = randomUUID();
    const reply = await this.redis.set(this.keyLockKey(tenantId, idempotencyKey), token, 'PX', ttlMs, 'NX');
    return reply === 'OK' ? token : null;
  }

  async unlockIdempotencyKey(tenantId: string, idempotencyKey: string, token: string): Promise<void> {
    await this.redis.eval(
      `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
      1,
      this.keyLockKey(tenantId, idempotencyKey),
      token,
    );
  }

  async epoch(): Promise<string | null> {
    return this.redis.get(this.epochKey);
  }

  /** The epoch and the generations of a run's and a tenant-day's keys (null when absent). */
  async generations(
    tenantId: string,
    runId: string,
    day: string,
  ): Promise<{ epoch: string | null; run: string | null; day: string | null }> {
    const pipeline = this.redis.pipeline();
    pipeline.get(this.epochKey);
    pipeline.hget(this.runKey(tenantId, runId), 'g');
    pipeline.hget(this.dayKey(tenantId, day), 'g');
    const replies = ((await pipeline.exec()) ?? []) as Array<[Error | null, string | null]>;
    for (const [error] of replies) if (error) throw error;
    return { epoch: replies[0]![1], run: replies[1]![1], day: replies[2]![1] };
  }

  /** True when the key of this scope is present (with its generation). */
  async hasScope(scope: CounterScope): Promise<boolean> {
    return (await this.redis.hget(this.scopeKey(scope), 'g')) !== null;
  }

  scopeKey(scope: CounterScope): string {
    return scope.kind === 'run' ? this.runKey(scope.tenantId, scope.runId) : this.dayKey(scope.tenantId, scope.day);
  }

  /**
   * Writes one counter key as the ledger has it (the caller holds the counters lock exclusively), with a new
   * generation given to the holds it counts. Returns null when the epoch is no longer `epoch` or (unless
   * `force`) the key is already there; else the holds whose hash was missing (written again, with this key's
   * generation only: the caller reloads their other key too).
   */
  async load(epoch: string, scope: ScopeLoad, force: boolean): Promise<SnapshotHold[] | null> {
    const fields =
      scope.kind === 'run'
        ? {
            tc: scope.tokens,
            tr: sum(scope.holds, (h) => h.tokens),
            cc: scope.cost,
            cr: sum(scope.holds, (h) => h.cost),
            ec: scope.external,
            er: sum(scope.holds, (h) => h.external),
            ...(scope.stop ? { stop: scope.stop } : {}),
          }
        : { cc: scope.cost, cr: sum(scope.holds, (h) => h.cost) };
    const pairs = Object.entries(fields).flatMap(([field, value]) => [field, value.toString()]);
    const holds = scope.holds.flatMap((h) => [
      h.reservationId,
      this.runKey(h.tenantId, h.runId),
      this.dayKey(h.tenantId, h.day),
      h.tokens.toString(),
      h.cost.toString(),
      h.external.toString(),
    ]);
    const reply = await this.redis.costCapLoad(
      this.epochKey,
      this.scopeKey(scope),
      epoch,
      force ? '1' : '0',
      scope.kind === 'run' ? 'rg' : 'dg',
      randomUUID(),
      scope.kind === 'run' ? this.runTtlS : DAY_TTL_S,
      this.reservationKey(''),
      Math.max(HOLD_TTL_S, this.runTtlS),
      pairs.length / 2,
      ...pairs,
      ...holds,
    );
    if (reply[0] !== 'OK') return null;
    const lost = new Set(reply.slice(1));
    return scope.holds.filter((h) => lost.has(h.reservationId));
  }

  private missing(reply: Array<string | number>, tenantId: string, runId: string, day: string): CountersMissingError {
    const scopes: CounterScope[] = [];
    if (String(reply[1]) === '1') scopes.push({ kind: 'run', tenantId, runId });
    if (String(reply[2]) === '1') scopes.push({ kind: 'day', tenantId, day });
    return new CountersMissingError(scopes);
  }

  private parseSettle(reply: Array<string | number>, args: SettleArgs): SettleResult {
    if (reply[0] === 'MISSING') throw this.missing(reply, args.tenantId, args.runId, args.day);
    return parseSettle(reply);
  }

  async openReservations(): Promise<number> {
    return this.redis.zcard(this.expiryKey);
  }

  /** Forgets the epoch: every script refuses to count until the next rebuild (forced rebuilds). */
  async dropEpoch(): Promise<void> {
    await this.redis.del(this.epochKey);
  }

  /**
   * Replaces every counter by the snapshot and starts a new epoch. The caller holds the exclusive
   * rebuild lock in PostgreSQL and the epoch is absent, so no script writes concurrently.
   */
  async writeSnapshot(snapshot: CounterSnapshot): Promise<string> {
    for (const pattern of ['run:*', 'day:*', 'resv:*']) await this.deleteMatching(`${this.prefix}${pattern}`);
    await this.redis.del(this.expiryKey);
    await this.writeScopes(snapshot, `snapshot-${randomUUID()}`);
    const epoch = randomUUID();
    await this.redis.set(this.epochKey, epoch);
    return epoch;
  }

  /**
   * Writes the keys of a snapshot, all of generation `generation`, over whatever is there (no other key is
   * touched: writeSnapshot clears first; tests write the few keys they use).
   */
  async writeScopes(snapshot: CounterSnapshot, generation: string): Promise<void> {
    let pipeline = this.redis.pipeline();
    let queued = 0;
    const flushIfFull = async () => {
      if (++queued < 1000) return;
      await execOrThrow(pipeline);
      pipeline = this.redis.pipeline();
      queued = 0;
    };
    for (const run of snapshot.runs) {
      const key = this.runKey(run.tenantId, run.runId);
      const fields: Record<string, string> = {
        tc: run.tokens.toString(),
        tr: run.heldTokens.toString(),
        cc: run.cost.toString(),
        cr: run.heldCost.toString(),
        ec: run.external.toString(),
        er: run.heldExternal.toString(),
        g: generation,
      };
      if (run.stop) fields.stop = run.stop;
      pipeline.hset(key, fields);
      pipeline.expire(key, this.runTtlS);
      await flushIfFull();
    }
    for (const day of snapshot.days) {
      const key = this.dayKey(day.tenantId, day.day);
      pipeline.hset(key, { cc: day.cost.toString(), cr: day.heldCost.toString(), g: generation });
      pipeline.expire(key, DAY_TTL_S);
      await flushIfFull();
    }
    for (const r of snapshot.reservations) {
      const key = this.reservationKey(r.reservationId);
      pipeline.hset(key, {
        run: this.runKey(r.tenantId, r.runId),
        day: this.dayKey(r.tenantId, r.day),
        t: r.tokens.toString(),
        c: r.cost.toString(),
        e: r.external.toString(),
        rg: generation,
        dg: generation,
      });
      pipeline.expire(key, Math.max(HOLD_TTL_S, this.runTtlS));
      pipeline.zadd(this.expiryKey, r.expiresAt.getTime(), r.reservationId);
      await flushIfFull();
    }
    await execOrThrow(pipeline);
  }

  private async deleteMatching(pattern: string): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length > 0) await this.redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
}

function parseSettle(reply: Array<string | number>): SettleResult {
  if (reply[0] === 'REBUILD') throw new CountersRebuildingError();
  const n = reply.map((value, index) => (index === 0 ? 0n : BigInt(value ?? 0)));
  return {
    released: n[1] === 1n,
    applied: n[2] === 1n,
    counters: {
      run_tokens: { committed: n[3]!, reserved: n[4]! },
      run_cost: { committed: n[5]!, reserved: n[6]! },
      run_external: { committed: n[7]!, reserved: n[8]! },
      tenant_cost: { committed: n[9]!, reserved: n[10]! },
    },
    stopped: n[11] === 1n,
  };
}

function sum(holds: SnapshotHold[], amount: (hold: SnapshotHold) => bigint): bigint {
  return holds.reduce((total, hold) => total + amount(hold), 0n);
}

async function execOrThrow(pipeline: ReturnType<Redis['pipeline']>): Promise<void> {
  for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
}
