import { Inject, Injectable, type MessageEvent, type OnModuleDestroy } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Gauge } from 'prom-client';
import { Observable } from 'rxjs';
import { withoutHidden } from '@agentmeter/domain';
import { metricsRegistry } from '@agentmeter/telemetry';
import type { Caller } from '../auth/caller';
import { QueryConfig } from '../config';
import { TooManyStreamsError } from '../errors/problems';
import { LOGGER } from '../logger';
import { ViewPolicy } from '../tenants/view.policy';
import { RunsRepository, type RunMetricsRow, type RunRow } from './runs.repository';
import { RunsService } from './runs.service';

interface Watched {
  tenantId: string;
  runId: string;
  version: string | null;
  listeners: Set<() => void>;
}

const TERMINAL = new Set(['succeeded', 'failed']);

/** Active streaming connections (docs/observability.md "Instrumentation contract"): live run streams this replica serves. */
const activeStreams = new Gauge({
  name: 'agentmeter_query_active_streams',
  help: 'Live run streams (Server-Sent Events) open on this replica.',
  registers: [metricsRegistry],
});

/**
 * GET /runs/{run_id}/stream: Server-Sent Events of a run's changes, so clients never poll.
 *
 * How changes are found (docs/query.md "Streams"): one timer per process checks every watched run in a
 * single indexed statement every STREAM_POLL_MS (the run row's and its stages' latest update time). Only a
 * changed run is re-read, once per subscriber (each sees its own role's view). This keeps ingest's write
 * path free of triggers and NOTIFY, and the database cost is one small query per interval whatever the
 * number of subscribers. Events: `metrics` (the GET /runs/{id}/metrics answer, first at once, then on
 * every change), `heartbeat` (server time, every STREAM_HEARTBEAT_MS, for the live counter and proxies),
 * and `end` when the run reaches a terminal state or the stream its STREAM_MAX_SECONDS (then reconnect).
 */
@Injectable()
export class RunStreamService implements OnModuleDestroy {
  private readonly watched = new Map<string, Watched>();
  /** Live streams per credential on this replica (STREAM_MAX_PER_CREDENTIAL). */
  private readonly streamsPerCredential = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private polling = false;

  constructor(
    private readonly runs: RunsService,
    private readonly repository: RunsRepository,
    private readonly views: ViewPolicy,
    @Inject(QueryConfig) private readonly config: QueryConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * Answers the request with the run's event stream. The run is resolved first, so a missing or another
   * tenant's run answers 404 like every other route, before any stream starts.
   */
  async serve(caller: Caller, runId: string, req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const credential = caller.principal.credential;
    if ((this.streamsPerCredential.get(credential) ?? 0) >= this.config.STREAM_MAX_PER_CREDENTIAL) {
      throw new TooManyStreamsError(
        `at most ${this.config.STREAM_MAX_PER_CREDENTIAL} live streams per credential: close one first`,
      );
    }
    const [events, hidden] = await Promise.all([this.open(caller, runId), this.views.hiddenFor(caller.principal)]);
    // Counted from here (after the 404 check) until the stream ends, whichever side ends it.
    this.streamsPerCredential.set(credential, (this.streamsPerCredential.get(credential) ?? 0) + 1);
    activeStreams.inc();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      activeStreams.dec();
      const left = (this.streamsPerCredential.get(credential) ?? 1) - 1;
      if (left > 0) this.streamsPerCredential.set(credential, left);
      else this.streamsPerCredential.delete(credential);
    };
    // The stream is written to the raw response: Fastify leaves it alone from here (its onResponse hook, and
    // so the HTTP metrics, still see the end). The security headers are already on it (onRequest).
    reply.hijack();
    const res = reply.raw;
    res.on('close', release);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    const subscription = events.subscribe({
      next: (event) => {
        const id = event.id ? `id: ${event.id}\n` : '';
        // The field policy, as for every other answer (field-policy.interceptor.ts).
        const data = JSON.stringify(withoutHidden(event.data, hidden));
        res.write(`event: ${event.type ?? 'message'}\n${id}data: ${data}\n\n`);
      },
      error: () => res.end(),
      complete: () => res.end(),
    });
    req.raw.on('close', () => {
      subscription.unsubscribe();
      release();
    });
  }

  /** Resolves the run first (404 before the stream starts), then streams it. */
  async open(caller: Caller, runId: string): Promise<Observable<MessageEvent>> {
    const run = await this.runs.findVisibleRunWithMetrics(caller, runId);
    return new Observable<MessageEvent>((subscriber) => {
      let done = false;
      let sending = Promise.resolve();
      const finish = (reason: string) => {
        if (done) return;
        done = true;
        subscriber.next({ type: 'end', data: { run_id: run.run_id, reason } });
        subscriber.complete();
      };
      const send = (row: RunMetricsRow) =>
        (sending = sending.then(async () => {
          if (done) return;
          const metrics = await this.runs.metricsOf(caller, row);
          if (done) return;
          subscriber.next({ type: 'metrics', id: metrics.freshness.last_synced_at, data: metrics });
          if (TERMINAL.has(row.status)) finish(`run ${row.status}`);
        })).catch((error: unknown) => {
          this.logger.error({ err: error, run_id: run.run_id }, 'run stream failed');
          done = true;
          subscriber.error(error);
        });
      const onChange = () =>
        void this.repository.findRunWithMetrics(run.tenant_id, run.run_id).then((row) => (row ? send(row) : undefined));

      void send(run);
      if (TERMINAL.has(run.status)) return;
      const unwatch = this.watch(run, onChange);
      const heartbeat = setInterval(
        () => subscriber.next({ type: 'heartbeat', data: { server_time: new Date().toISOString() } }),
        this.config.STREAM_HEARTBEAT_MS,
      );
      const maxAge = setTimeout(() => finish('stream time limit, reconnect'), this.config.STREAM_MAX_SECONDS * 1000);
      return () => {
        done = true;
        unwatch();
        clearInterval(heartbeat);
        clearTimeout(maxAge);
      };
    });
  }

  /** Live streams of a credential on this replica (tests). */
  openStreams(credential: string): number {
    return this.streamsPerCredential.get(credential) ?? 0;
  }

  /** Number of runs watched now (metrics and tests). */
  get watchedRuns(): number {
    return this.watched.size;
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.watched.clear();
  }

  private watch(run: RunRow, listener: () => void): () => void {
    const key = `${run.tenant_id}\u0000${run.run_id}`;
    let entry = this.watched.get(key);
    if (!entry) {
      entry = { tenantId: run.tenant_id, runId: run.run_id, version: null, listeners: new Set() };
      this.watched.set(key, entry);
    }
    entry.listeners.add(listener);
    this.timer ??= setInterval(() => void this.poll(), this.config.STREAM_POLL_MS);
    return () => {
      entry.listeners.delete(listener);
      if (entry.listeners.size === 0) this.watched.delete(key);
      if (this.watched.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }

  private async poll(): Promise<void> {
    if (this.polling || this.watched.size === 0) return;
    this.polling = true;
    try {
      const entries = [...this.watched.values()];
      const versions = await this.repository.versionsOfWatchedRuns(entries);
      for (const { tenant_id, run_id, version } of versions) {
        const entry = this.watched.get(`${tenant_id}\u0000${run_id}`);
        if (!entry) continue;
        // The first poll of a run also notifies: a change between a subscriber's first read and this poll
        // must not be lost (at worst, one unchanged state is sent twice).
        if (entry.version === version) continue;
        entry.version = version;
        for (const listener of entry.listeners) listener();
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'run stream poll failed; retrying next interval');
    } finally {
      this.polling = false;
    }
  }
}
