import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Clock } from '@agentmeter/domain';
import { logConnectionErrors } from '@agentmeter/telemetry';
import { CostCapConfig } from '../config';
import { CountersStore } from '../counters/counters.store';
import { LOGGER } from '../logger';
import {
  EXPIRED_RAISES_KEPT_MS,
  type PublisherFreeze,
  type RunRecord,
  SettingsRepository,
  type TenantSettings,
} from './settings.repository';

/** How often each replica checks the settings version (the fallback when a pub/sub message is lost). */
const SETTINGS_POLL_MS = 250;
/** Settings are reloaded at least this often even without a change signal. */
const MAX_AGE_MS = 30_000;
/** Run records change only when run_started arrives or a request declares caps. */
const RUN_MAX_AGE_MS = 5_000;
const MAX_RUNS_CACHED = 50_000;

interface Cached<T> {
  value: Promise<T>;
  loadedAt: number;
}

/** Settings loaded for the service clock's time `loadedFor` (which raises they hold depends on it). */
interface CachedTenant extends Cached<TenantSettings> {
  loadedFor: number;
}

/**
 * The caps configuration as each replica sees it: cached in memory, invalidated across replicas within a
 * second of a change. A change bumps a version key and publishes the tenant on a Redis channel; every
 * replica drops that tenant on the message, and also polls the version every SETTINGS_POLL_MS in case a
 * message was lost (pub/sub is at most once). Whether a raise is in force is decided at each call from
 * its expiry, so expiries need no signal at all.
 */
@Injectable()
export class SettingsCache implements OnModuleInit, OnApplicationShutdown {
  private readonly tenants = new Map<string, CachedTenant>();
  private readonly runs = new Map<string, Cached<RunRecord | null>>();
  private freezes: Cached<Map<string, PublisherFreeze>> | null = null;
  private subscriber: Redis | undefined;
  private version: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private readonly versionKey: string;
  private readonly channel: string;

  constructor(
    @Inject(CostCapConfig) config: CostCapConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly repository: SettingsRepository,
    private readonly counters: CountersStore,
    private readonly clock: Clock,
  ) {
    this.versionKey = `${config.REDIS_KEY_PREFIX}cc:settings-version`;
    this.channel = `${config.REDIS_KEY_PREFIX}cc:settings`;
  }

  async onModuleInit(): Promise<void> {
    this.subscriber = logConnectionErrors(this.counters.redis.duplicate(), this.logger, 'redis (settings)');
    this.subscriber.on('message', (_channel: string, message: string) => this.forget(message));
    await this.subscriber.subscribe(this.channel);
    this.version = await this.counters.redis.get(this.versionKey);
    this.timer = setInterval(() => void this.poll(), SETTINGS_POLL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
    this.subscriber?.disconnect();
  }

  tenant(tenantId: string): Promise<TenantSettings> {
    const now = this.clock.now();
    const hit = this.tenants.get(tenantId);
    // The age of a copy is machine time (how stale it is); the raises it holds depend on the service clock's
    // time it was loaded for: with the clock set back before that, a raise in force now may be missing.
    const fresh = hit && Date.now() - hit.loadedAt <= MAX_AGE_MS;
    if (fresh && now.getTime() >= hit.loadedFor - EXPIRED_RAISES_KEPT_MS) return hit.value;
    const entry = { value: this.repository.loadTenant(tenantId, now), loadedAt: Date.now(), loadedFor: now.getTime() };
    entry.value.catch(() => this.tenants.delete(tenantId)); // a failed load is retried by the next call
    this.tenants.set(tenantId, entry);
    return entry.value;
  }

  run(tenantId: string, runId: string): Promise<RunRecord | null> {
    if (this.runs.size > MAX_RUNS_CACHED) this.runs.clear();
    return this.cached(this.runs, `${tenantId}\u0000${runId}`, RUN_MAX_AGE_MS, () =>
      this.repository.findRun(tenantId, runId),
    );
  }

  async freeze(playbook: string): Promise<PublisherFreeze | null> {
    if (!this.freezes || Date.now() - this.freezes.loadedAt > MAX_AGE_MS) {
      this.freezes = { value: this.repository.loadFreezesOfAllPlaybooks(), loadedAt: Date.now() };
      this.freezes.value.catch(() => (this.freezes = null));
    }
    return (await this.freezes.value).get(playbook) ?? null;
  }

  /** Tells every replica (this one at once) that a tenant's settings, or "playbooks", changed. */
  async changed(scope: string): Promise<void> {
    this.forget(scope);
    await this.counters.redis.multi().incr(this.versionKey).publish(this.channel, scope).exec();
  }

  /** Drops what this replica knows about one run (its caps or its start were just written). */
  forgetRun(tenantId: string, runId: string): void {
    this.runs.delete(`${tenantId}\u0000${runId}`);
  }

  private forget(scope: string): void {
    if (scope === '*') {
      this.tenants.clear();
      this.freezes = null;
    } else if (scope === 'playbooks') {
      this.freezes = null;
    } else {
      this.tenants.delete(scope);
    }
  }

  private async poll(): Promise<void> {
    try {
      const version = await this.counters.redis.get(this.versionKey);
      if (version !== this.version) {
        this.version = version;
        this.forget('*');
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'settings version check failed');
    }
  }

  private cached<T>(map: Map<string, Cached<T>>, key: string, maxAgeMs: number, load: () => Promise<T>): Promise<T> {
    const hit = map.get(key);
    if (hit && Date.now() - hit.loadedAt <= maxAgeMs) return hit.value;
    const entry = { value: load(), loadedAt: Date.now() };
    entry.value.catch(() => map.delete(key)); // a failed load is retried by the next call
    map.set(key, entry);
    return entry.value;
  }
}
