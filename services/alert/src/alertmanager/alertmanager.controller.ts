import { Body, Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AlertmanagerWebhook } from '@agentmeter/contracts';
import { ServiceTokenGuard } from '@agentmeter/http';
import { openApiSchema, ZodBody } from '../http/zod-body.pipe';
import { AlertmanagerService } from './alertmanager.service';

@ApiTags('observability')
@ApiBearerAuth()
@UseGuards(ServiceTokenGuard)
@Controller('observability/alerts')
export class AlertmanagerController {
  constructor(private readonly alertmanager: AlertmanagerService) {}

  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: 'Prometheus Alertmanager webhook (payload version 4): audited, then routed as alerts' })
  @ApiBody({ schema: openApiSchema(AlertmanagerWebhook) })
  @ApiOkResponse({
    schema: { type: 'object', properties: { received: { type: 'integer' }, notified: { type: 'integer' } } },
  })
  receive(@Body(new ZodBody(AlertmanagerWebhook)) payload: AlertmanagerWebhook) {
    return this.alertmanager.receive(payload);
  }
}
