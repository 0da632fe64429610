import { Controller, Delete, HttpCode, Param, Post } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Allow, CurrentCaller } from '../auth/auth.guard';
import type { Caller } from '../auth/caller';
import { openApiSchema, parseId, ValidBody } from '../http/validation';
import { ActionResult, MuteBody, RaiseCapBody, ReasonBody, ReopenPhaseBody, UnmuteBody } from './actions.schemas';
import { ActionsService } from './actions.service';

const accepted = ApiAcceptedResponse({
  schema: openApiSchema(ActionResult),
  description: 'done by the owning service',
});

/** Quick actions of the Admin Overview (docs/query.md "Actions"); each audited and carried out by the service that owns it. */
@ApiTags('actions')
@Controller()
export class ActionsController {
  constructor(private readonly actions: ActionsService) {}

  @Post('tenants/:tenant_id/pause')
  @HttpCode(202)
  @Allow('tenant.pause')
  @ApiOperation({ summary: 'Pause a tenant: cost-cap denies its admissions until unpaused' })
  @accepted
  pause(
    @CurrentCaller() caller: Caller,
    @Param('tenant_id') tenantId: string,
    @ValidBody(ReasonBody) body: ReasonBody,
  ) {
    return this.actions.pause(caller, parseId(tenantId, 'tenant_id'), body.reason, true);
  }

  @Post('tenants/:tenant_id/unpause')
  @HttpCode(202)
  @Allow('tenant.pause')
  @accepted
  unpause(
    @CurrentCaller() caller: Caller,
    @Param('tenant_id') tenantId: string,
    @ValidBody(ReasonBody) body: ReasonBody,
  ) {
    return this.actions.pause(caller, parseId(tenantId, 'tenant_id'), body.reason, false);
  }

  @Post('tenants/:tenant_id/caps')
  @HttpCode(202)
  @Allow('caps.raise')
  @ApiOperation({ summary: 'Raise a cap, permanently or for 72 hours, with a reason' })
  @accepted
  raise(
    @CurrentCaller() caller: Caller,
    @Param('tenant_id') tenantId: string,
    @ValidBody(RaiseCapBody) body: RaiseCapBody,
  ) {
    return this.actions.raiseCap(caller, parseId(tenantId, 'tenant_id'), body);
  }

  @Post('runs/:run_id/reopen-phase')
  @HttpCode(202)
  @Allow('runs.control')
  @ApiOperation({ summary: 'Ask the Coordinator to reopen a phase of the run (agent.control.v1)' })
  @accepted
  reopen(
    @CurrentCaller() caller: Caller,
    @Param('run_id') runId: string,
    @ValidBody(ReopenPhaseBody) body: ReopenPhaseBody,
  ) {
    return this.actions.reopenPhase(caller, parseId(runId, 'run_id'), body);
  }

  @Post('runs/:run_id/rerun-last-step')
  @HttpCode(202)
  @Allow('runs.control')
  @ApiOperation({ summary: "Ask the Coordinator to rerun the run's last step (agent.control.v1)" })
  @accepted
  rerun(@CurrentCaller() caller: Caller, @Param('run_id') runId: string, @ValidBody(ReasonBody) body: ReasonBody) {
    return this.actions.rerunLastStep(caller, parseId(runId, 'run_id'), body.reason);
  }

  @Post('alerts/mutes')
  @HttpCode(202)
  @Allow('alerts.mute')
  @ApiOperation({ summary: "Mute a tenant's alerts (one rule or all), until a time" })
  @accepted
  mute(@CurrentCaller() caller: Caller, @ValidBody(MuteBody) body: MuteBody) {
    return this.actions.mute(caller, body);
  }

  @Delete('alerts/mutes/:mute_id')
  @HttpCode(202)
  @Allow('alerts.mute')
  @accepted
  unmute(@CurrentCaller() caller: Caller, @Param('mute_id') muteId: string, @ValidBody(UnmuteBody) body: UnmuteBody) {
    return this.actions.unmute(caller, parseId(muteId, 'mute_id'), body);
  }
}
