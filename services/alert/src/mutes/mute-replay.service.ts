import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Clock, muteVerdict } from '@agentmeter/domain';
import { AlertQueuesClient } from '../dispatch/alert-queues';
import { LOGGER } from '../logger';
import { MuteReplayRepository, type MutedNotification } from './mute-replay.repository';
import { MutesRepository } from './mutes.repository';

export type ReplayOutcome =
  { status: 'replayed'; groups: string[]; handedOver: number; stillMuted: number } | { status: 'nothing' };

/**
 * When a one-off mute ends (it expired, or was cancelled), the alerts it silenced are delivered once: one
 * summary group per rule and audience ("N alerts while muted"), flushed at once through the normal fan-out.
 * The claim is the mute row (`replayed_at`, set in the transaction that creates the groups), so the delayed
 * job, a duplicate of it, the sweep and a second replica replay it once between them. docs/alert.md "Muting".
 */
@Injectable()
export class MuteReplayService {
  constructor(
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly repository: MuteReplayRepository,
    private readonly mutes: MutesRepository,
    private readonly queues: AlertQueuesClient,
    private readonly clock: Clock,
  ) {}

  async replay(muteId: string, now: Date = this.clock.now()): Promise<ReplayOutcome> {
    const outcome = await this.repository.transaction(async (tx): Promise<ReplayOutcome> => {
      const mute = await this.repository.claimEnded(tx, muteId, now);
      if (!mute) return { status: 'nothing' };
      const mutedBy = `mute:${mute.id}`;
      const notifications = await this.repository.mutedNotifications(tx, mute.tenant_id, mutedBy);
      const { mutes, timings } = await this.mutes.inForceOfTenant(mute.tenant_id, now, tx);
      const groups: string[] = [];
      let handedOver = 0;
      let stillMuted = 0;
      for (const same of groupsOf(notifications)) {
        const { rule, audience } = same[0]!;
        const keys = same.map((n) => n.alert_key);
        const verdict = muteVerdict(rule, audience, now, mutes, timings);
        if (verdict.muted && verdict.by.startsWith('mute:')) {
          // Still silenced by another mute: delivered when that one ends.
          await this.repository.handOver(tx, mute.tenant_id, mutedBy, verdict.by, keys);
          handedOver += same.length;
        } else if (verdict.muted) {
          // A mute timing (recurring) is in force: they stay recorded, as any alert muted by a timing.
          stillMuted += same.length;
        } else {
          const id = randomUUID();
          await this.repository.insertSummaryGroup(
            tx,
            { id, tenantId: mute.tenant_id, rule, audience, mutedBy, now },
            same.map((n) => n.id),
          );
          await this.repository.markNotified(tx, mute.tenant_id, keys, now);
          groups.push(id);
        }
      }
      return { status: 'replayed', groups, handedOver, stillMuted };
    });
    if (outcome.status === 'replayed') {
      // A crash before these jobs are added leaves open groups past their flush time: the sweep flushes them.
      for (const group of outcome.groups) await this.queues.flushGroupAt(group, 0);
      this.logger.info({ mute_id: muteId, ...outcome }, 'mute ended: muted alerts replayed');
    }
    return outcome;
  }

  /** The sweep's share: mutes that are over and were never replayed (their job was lost). */
  async replayEnded(now: Date = this.clock.now()): Promise<number> {
    let replayed = 0;
    for (const mute of await this.repository.endedUnreplayedOfAllTenants(now)) {
      if ((await this.replay(mute.id, now)).status === 'replayed') replayed++;
    }
    return replayed;
  }

  /** Schedules the replay at the mute's end (a job keyed by the mute: scheduling twice adds it once). */
  async scheduleEnd(muteId: string, endsAt: Date, now: Date = this.clock.now()): Promise<void> {
    await this.enqueue(muteId, endsAt.getTime() - now.getTime());
  }

  /** The mute was cancelled: its replay runs now. */
  async endNow(muteId: string): Promise<void> {
    await this.enqueue(muteId, 0);
  }

  /** Redis down: the API call still succeeds (the mute is in PostgreSQL) and the sweep replays it when over. */
  private async enqueue(muteId: string, delayMs: number): Promise<void> {
    await this.queues
      .muteEndedIn(muteId, delayMs)
      .catch((error: unknown) =>
        this.logger.warn({ err: error, mute_id: muteId }, 'mute end job not added; the sweep replays the mute'),
      );
  }
}

/** Notifications by rule and audience, in the order they were first muted. */
function groupsOf(notifications: readonly MutedNotification[]): MutedNotification[][] {
  const byKey = new Map<string, MutedNotification[]>();
  for (const n of notifications) {
    const key = `${n.rule}\u0000${n.audience}`;
    byKey.set(key, [...(byKey.get(key) ?? []), n]);
  }
  return [...byKey.values()];
}
