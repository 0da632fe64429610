import { Injectable } from '@nestjs/common';
import type { ControlCommandOf } from '@agentmeter/contracts';
import { Clock, Redactor } from '@agentmeter/domain';
import { auditActor, AuditRepository } from '../audit/audit.repository';
import { type Caller, requireTenant, tenantOf } from '../auth/caller';
import { NotFoundError } from '@agentmeter/http';
import { RunsService } from '../runs/runs.service';
import { TenantsRepository } from '../tenants/tenants.repository';
import type { ActionResult, MuteBody, RaiseCapBody, ReopenPhaseBody, UnmuteBody } from './actions.schemas';
import { AlertClient, CoordinatorPublisher, CostCapClient, type UpstreamAnswer } from './owner-services.client';

type Executor = ActionResult['executor'];

/** The Coordinator commands of the run actions (libs/contracts control-commands.ts). */
type RunCommand = ControlCommandOf<'reopen_phase' | 'rerun_last_step'>;

const PERMANENT_FIELD = {
  run_tokens: 'max_tokens',
  run_wall_time: 'max_wall_time_s',
  run_cost: 'max_cost_usd',
  run_external: 'max_external_usd',
} as const;

/**
 * The Admin Overview's quick actions (docs/query.md "Actions"). Each is checked by role (the route's permission), written
 * to the audit log before it is attempted, carried out by the service that owns it, and completed in the
 * log with that service's answer (a failure is recorded and answered 502/503).
 */
@Injectable()
export class ActionsService {
  constructor(
    private readonly audit: AuditRepository,
    private readonly tenants: TenantsRepository,
    private readonly runs: RunsService,
    private readonly costCap: CostCapClient,
    private readonly alert: AlertClient,
    private readonly coordinator: CoordinatorPublisher,
    private readonly clock: Clock,
    private readonly redactor: Redactor,
  ) {}

  async pause(caller: Caller, tenantId: string, reason: string, paused: boolean): Promise<ActionResult> {
    const id = await this.existingTenant(caller, tenantId);
    const action = paused ? 'tenant.pause' : 'tenant.unpause';
    return this.perform(caller, { tenantId: id, action, target: id, reason, params: {}, executor: 'cost-cap' }, () => {
      const body = { actor: this.actorOf(caller), reason };
      return paused ? this.costCap.pauseTenant(id, body) : this.costCap.unpauseTenant(id, body);
    });
  }

  async raiseCap(caller: Caller, tenantId: string, body: RaiseCapBody): Promise<ActionResult> {
    const id = await this.existingTenant(caller, tenantId);
    const actor = this.actorOf(caller);
    const entry = {
      tenantId: id,
      action: body.duration === 'permanent' ? 'caps.set' : 'caps.raise_72h',
      target: body.run_id ?? body.project_id ?? id,
      reason: body.reason,
      params: {
        cap: body.cap,
        limit: body.limit,
        duration: body.duration,
        run_id: body.run_id,
        project_id: body.project_id,
      },
      executor: 'cost-cap' as const,
    };
    return this.perform(caller, entry, () => {
      if (body.duration === '72h') {
        return this.costCap.raise(id, {
          actor,
          reason: body.reason,
          cap: body.cap,
          limit: body.limit,
          duration_hours: 72,
          ...(body.run_id ? { run_id: body.run_id } : {}),
        });
      }
      const common = { actor, reason: body.reason, ...(body.project_id ? { project_id: body.project_id } : {}) };
      if (body.cap === 'tenant_daily_cost') return this.costCap.putCaps(id, { ...common, daily_cap_usd: body.limit });
      const field = PERMANENT_FIELD[body.cap];
      const value = field === 'max_tokens' || field === 'max_wall_time_s' ? Number(body.limit) : body.limit;
      return this.costCap.putCaps(id, { ...common, run: { [field]: value } });
    });
  }

  async reopenPhase(caller: Caller, runId: string, body: ReopenPhaseBody): Promise<ActionResult> {
    return this.command(caller, runId, 'run.reopen_phase', body.reason, { phase: body.phase }, (run, base) => ({
      ...base,
      type: 'reopen_phase',
      phase: body.phase,
    }));
  }

  async rerunLastStep(caller: Caller, runId: string, reason: string): Promise<ActionResult> {
    return this.command(caller, runId, 'run.rerun_last_step', reason, {}, (run, base) => ({
      ...base,
      type: 'rerun_last_step',
      phase: run.phase,
    }));
  }

  async mute(caller: Caller, body: MuteBody): Promise<ActionResult> {
    const id = tenantOf(caller, body.tenant_id) ?? caller.principal.tenantId;
    const now = this.clock.now();
    const endsAt = body.ends_at ?? new Date(now.getTime() + body.duration_hours! * 3_600_000).toISOString();
    const entry = {
      tenantId: id,
      action: 'alerts.mute',
      target: body.rule ?? '*',
      reason: body.reason,
      params: { rule: body.rule, ends_at: endsAt },
      executor: 'alert' as const,
    };
    return this.perform(caller, entry, () =>
      this.alert.mute({
        tenant_id: id,
        ...(body.rule ? { rule: body.rule } : {}),
        ends_at: endsAt,
        actor: this.actorOf(caller),
        reason: body.reason,
      }),
    );
  }

  async unmute(caller: Caller, muteId: string, body: UnmuteBody): Promise<ActionResult> {
    const id = tenantOf(caller, body.tenant_id) ?? caller.principal.tenantId;
    const entry = {
      tenantId: id,
      action: 'alerts.unmute',
      target: muteId,
      reason: body.reason,
      params: {},
      executor: 'alert' as const,
    };
    return this.perform(caller, entry, () =>
      this.alert.unmute(muteId, { tenant_id: id, actor: this.actorOf(caller), reason: body.reason }),
    );
  }

  private async command(
    caller: Caller,
    runId: string,
    action: string,
    reason: string,
    params: Record<string, unknown>,
    build: (run: { phase: string | null }, base: Omit<RunCommand, 'type' | 'phase'>) => RunCommand,
  ): Promise<ActionResult> {
    const run = await this.runs.findVisibleRun(caller, runId);
    const entry = {
      tenantId: run.tenant_id,
      action,
      target: run.run_id,
      reason,
      params,
      executor: 'coordinator' as const,
    };
    return this.perform(caller, entry, (auditId) =>
      this.coordinator.send(
        build(run, {
          version: 1,
          command_id: `query-audit-${auditId}`,
          issued_at: this.clock.now().toISOString(),
          issued_by: this.actorOf(caller),
          reason,
          tenant_id: run.tenant_id,
          project_id: run.project_id,
          run_id: run.run_id,
        }),
      ),
    );
  }

  /**
   * Who acts, as the owning services and the Coordinator hear it: a JWT subject that is an e-mail address
   * or phone number travels as its pseudonym (docs/security.md "Redaction and pseudonymisation").
   */
  private actorOf(caller: Caller): string {
    return this.redactor.identifier(caller.principal.subject, 'user');
  }

  private async existingTenant(caller: Caller, tenantId: string): Promise<string> {
    const id = requireTenant(caller, tenantId);
    if (!(await this.tenants.settings(id))) throw new NotFoundError(`tenant ${tenantId} not found`);
    return id;
  }

  private async perform(
    caller: Caller,
    entry: {
      tenantId: string;
      action: string;
      target: string;
      reason: string;
      params: Record<string, unknown>;
      executor: Executor;
    },
    run: (auditId: string) => Promise<UpstreamAnswer>,
  ): Promise<ActionResult> {
    const auditId = await this.audit.begin({
      ...entry,
      ...auditActor(caller),
    });
    let answer: UpstreamAnswer;
    try {
      answer = await run(auditId);
    } catch (error) {
      await this.audit.finish(auditId, 'failed', (error as Error).message);
      throw error;
    }
    await this.audit.finish(auditId, 'succeeded', `${entry.executor} answered ${answer.status}`);
    return {
      audit_id: auditId,
      action: entry.action,
      executor: entry.executor,
      outcome: 'succeeded',
      result: answer.body,
    };
  }
}
