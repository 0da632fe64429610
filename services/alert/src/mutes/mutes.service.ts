import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { WEEKDAYS, type CreateMuteBody, type CreateMuteTimingBody } from '@agentmeter/contracts';
import { clockMinutes, Clock } from '@agentmeter/domain';
import { AuditRepository } from '../audit/audit.repository';
import { NotFoundError } from '@agentmeter/http';
import { MuteReplayService } from './mute-replay.service';
import { MutesRepository, type MuteRow, type MuteTimingRow } from './mutes.repository';

/** Mutes and mute timings; every change is audited with its actor and reason in the same transaction. */
@Injectable()
export class MutesService {
  constructor(
    private readonly repository: MutesRepository,
    private readonly audit: AuditRepository,
    private readonly clock: Clock,
    private readonly replay: MuteReplayService,
  ) {}

  async create(body: CreateMuteBody): Promise<MuteRow> {
    const now = this.clock.now();
    const created = await this.repository.transaction(async (tx) => {
      const row = await this.repository.insertMute(tx, {
        id: randomUUID(),
        tenant_id: body.tenant_id,
        rule: body.rule ?? null,
        starts_at: body.starts_at ? new Date(body.starts_at) : now,
        ends_at: new Date(body.ends_at),
        actor: body.actor,
        reason: body.reason,
      });
      await this.audit.record(
        [
          {
            tenantId: body.tenant_id,
            actor: body.actor,
            action: 'mute.create',
            target: row.id,
            reason: body.reason,
            detail: { rule: row.rule, starts_at: row.starts_at, ends_at: row.ends_at },
          },
        ],
        tx,
      );
      return row;
    });
    // What it silences is delivered once when it ends (docs/alert.md "Muting").
    await this.replay.scheduleEnd(created.id, created.ends_at, now);
    return created;
  }

  list(tenantId: string, includeOver: boolean): Promise<MuteRow[]> {
    return this.repository.listMutesOfTenant(tenantId, includeOver, this.clock.now());
  }

  async cancel(tenantId: string, id: string, actor: string, reason: string): Promise<MuteRow> {
    const cancelled = await this.repository.transaction(async (tx) => {
      const row = await this.repository.cancelMute(tx, tenantId, id, actor, reason, this.clock.now());
      if (!row) throw new NotFoundError(`no active mute ${id} for tenant ${tenantId}`);
      await this.audit.record([{ tenantId, actor, action: 'mute.cancel', target: id, reason, detail: {} }], tx);
      return row;
    });
    await this.replay.endNow(cancelled.id);
    return cancelled;
  }

  async createTiming(body: CreateMuteTimingBody): Promise<MuteTimingRow> {
    return this.repository.transaction(async (tx) => {
      const row = await this.repository.insertTiming(tx, {
        id: randomUUID(),
        tenant_id: body.tenant_id,
        rule: body.rule ?? null,
        name: body.name,
        weekdays: [...new Set(body.weekdays.map((day) => WEEKDAYS.indexOf(day)))].sort(),
        start_minute: clockMinutes(body.start),
        end_minute: clockMinutes(body.end),
        time_zone: body.time_zone,
        actor: body.actor,
        reason: body.reason,
      });
      await this.audit.record(
        [
          {
            tenantId: body.tenant_id,
            actor: body.actor,
            action: 'mute_timing.create',
            target: row.id,
            reason: body.reason,
            detail: {
              name: body.name,
              rule: row.rule,
              weekdays: body.weekdays,
              start: body.start,
              end: body.end,
              time_zone: body.time_zone,
            },
          },
        ],
        tx,
      );
      return row;
    });
  }

  listTimings(tenantId: string): Promise<MuteTimingRow[]> {
    return this.repository.listTimingsOfTenant(tenantId);
  }

  async deleteTiming(tenantId: string, id: string, actor: string, reason: string): Promise<void> {
    await this.repository.transaction(async (tx) => {
      const row = await this.repository.deleteTiming(tx, tenantId, id, actor, this.clock.now());
      if (!row) throw new NotFoundError(`no mute timing ${id} for tenant ${tenantId}`);
      await this.audit.record([{ tenantId, actor, action: 'mute_timing.delete', target: id, reason, detail: {} }], tx);
    });
  }
}
