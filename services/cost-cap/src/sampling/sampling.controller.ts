import { Body, Controller, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ValidatorSamplesRequest } from '@agentmeter/contracts';
import { openApi, ZodPipe } from '../http/zod';
import { SamplingService } from './sampling.service';

/** The daily sampling job's results (docs/cost-cap.md "Crossings, commands and alerts"). */
@ApiTags('sampling')
@ApiBearerAuth()
@Controller('v1/playbooks')
export class SamplingController {
  constructor(private readonly sampling: SamplingService) {}

  @Post(':playbook/validator-samples')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Record strict-mode Validator sample results of a playbook',
    description:
      "Above the failure threshold (with enough samples in the window) the playbook's Publisher is frozen: publisher admissions are denied, a freeze_publisher command and an Admin alert are published. A repeated sample_id is ignored.",
  })
  @ApiBody({ schema: openApi(ValidatorSamplesRequest) })
  record(
    @Param('playbook') playbook: string,
    @Body(new ZodPipe(ValidatorSamplesRequest)) body: ValidatorSamplesRequest,
  ) {
    return this.sampling.record(playbook, body);
  }
}
