import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiAcceptedResponse, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { InvalidRequestError } from '@agentmeter/http';
import { Allow, CurrentCaller } from '../auth/auth.guard';
import type { Caller } from '../auth/caller';
import { openApiSchema, parseId, ValidBody, ValidQuery } from '../http/validation';
import {
  PriceBody,
  PriceChange,
  PriceList,
  PriceQuery,
  RepriceBody,
  RepriceList,
  RepriceQuery,
  RepriceStatus,
  RetireBody,
} from './prices.schemas';
import { PricesService } from './prices.service';

/** Model prices and reprices (docs/query.md "Prices"): Admin only, every change audited. */
@ApiTags('prices')
@Controller('admin')
export class PricesController {
  constructor(private readonly prices: PricesService) {}

  @Get('prices')
  @Allow('prices.manage')
  @ApiOperation({ summary: 'Model prices in effect and scheduled (history=true: superseded and retired too)' })
  @ApiOkResponse({ schema: openApiSchema(PriceList) })
  list(@ValidQuery(PriceQuery) query: PriceQuery): Promise<PriceList> {
    return this.prices.list(query);
  }

  @Post('prices')
  @Allow('prices.manage')
  @ApiOperation({
    summary: 'Add an effective-dated price (now or later, never in the past); applies within a minute; audited',
  })
  @ApiCreatedResponse({ schema: openApiSchema(PriceChange) })
  create(@CurrentCaller() caller: Caller, @ValidBody(PriceBody) body: PriceBody): Promise<PriceChange> {
    return this.prices.create(caller, body);
  }

  @Post('prices/:price_id/retire')
  @HttpCode(200)
  @Allow('prices.manage')
  @ApiOperation({ summary: 'Retire a price from now on (stored calls keep their cost); audited' })
  @ApiOkResponse({ schema: openApiSchema(PriceChange) })
  retire(
    @CurrentCaller() caller: Caller,
    @Param('price_id') id: string,
    @ValidBody(RetireBody) body: RetireBody,
  ): Promise<PriceChange> {
    return this.prices.retire(caller, parseUuid(id), body.reason);
  }

  @Post('reprices')
  @HttpCode(202)
  @Allow('prices.manage')
  @ApiOperation({ summary: 'Reprice the calls of a period at the prices stored now, as a job; audited' })
  @ApiAcceptedResponse({ schema: openApiSchema(RepriceStatus) })
  reprice(@CurrentCaller() caller: Caller, @ValidBody(RepriceBody) body: RepriceBody): Promise<RepriceStatus> {
    return this.prices.reprice(caller, body);
  }

  @Get('reprices')
  @Allow('prices.manage')
  @ApiOperation({ summary: 'Reprice requests, newest first, with their status and result once done (id: one request)' })
  @ApiOkResponse({ schema: openApiSchema(RepriceList) })
  reprices(@ValidQuery(RepriceQuery) query: RepriceQuery): Promise<RepriceList> {
    return this.prices.reprices(query);
  }
}

function parseUuid(value: string): string {
  const id = parseId(value, 'price_id');
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
    throw new InvalidRequestError('price_id: not a price id');
  }
  return id;
}
