import { Body, Controller, HttpCode, Param, Post } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import {
  CommitRequest,
  CommitResponse,
  ExtendRequest,
  ExtendResponse,
  ReleaseResponse,
  ReserveRequest,
  ReserveResponse,
} from '@agentmeter/contracts';
import { openApi, ZodPipe } from '../http/zod';
import { AdmissionService } from './admission.service';
import { SettlementService } from './settlement.service';

const REBUILDING = 'Counters are being rebuilt from the ledger (Redis lost its data): retry after Retry-After seconds.';

/** The Coordinator's admission calls, before and after each LLM call or external charge. */
@ApiTags('admission')
@ApiBearerAuth()
@Controller('v1/admission')
export class AdmissionController {
  constructor(
    private readonly admission: AdmissionService,
    private readonly settlement: SettlementService,
  ) {}

  @Post('reserve')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Reserve an estimated spend',
    description:
      'Checks and holds the run and tenant-day caps atomically. Answers allow (with a reservation), allow_cheaper_model (retries from attempt 2, never the Validator), publish_partial (the Publisher gets what is left) or deny (which cap, limit, spend, reset time, override).',
  })
  @ApiBody({ schema: openApi(ReserveRequest) })
  @ApiOkResponse({ schema: openApi(ReserveResponse, 'output') })
  @ApiServiceUnavailableResponse({ description: REBUILDING })
  reserve(@Body(new ZodPipe(ReserveRequest)) body: ReserveRequest): Promise<ReserveResponse> {
    return this.admission.reserve(body);
  }

  @Post('reservations/:reservation_id/commit')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Account the actual spend of a reservation',
    description:
      'Adds the actual amount to the ledger under the identity of the event the Coordinator publishes for it (so the stream copy is not counted again) and releases the hold. Repeating a commit changes nothing.',
  })
  @ApiBody({ schema: openApi(CommitRequest) })
  @ApiOkResponse({ schema: openApi(CommitResponse, 'output') })
  @ApiNotFoundResponse({ description: 'No such reservation.' })
  @ApiServiceUnavailableResponse({ description: REBUILDING })
  commit(
    @Param('reservation_id') reservationId: string,
    @Body(new ZodPipe(CommitRequest)) body: CommitRequest,
  ): Promise<CommitResponse> {
    return this.settlement.commit(reservationId, body);
  }

  @Post('reservations/:reservation_id/release')
  @HttpCode(200)
  @ApiOperation({ summary: 'Release a reservation that was not spent' })
  @ApiOkResponse({ schema: openApi(ReleaseResponse, 'output') })
  @ApiNotFoundResponse({ description: 'No such reservation.' })
  release(@Param('reservation_id') reservationId: string) {
    return this.settlement.release(reservationId);
  }

  @Post('reservations/:reservation_id/extend')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Extend a reservation whose call is still running',
    description:
      'Moves its expiry to now + ttl_s (an expired reservation is open again). A hold counts until it is committed or released whatever its expiry; extending keeps the reservation reported as open.',
  })
  @ApiBody({ schema: openApi(ExtendRequest) })
  @ApiOkResponse({ schema: openApi(ExtendResponse, 'output') })
  @ApiNotFoundResponse({ description: 'No such reservation.' })
  extend(
    @Param('reservation_id') reservationId: string,
    @Body(new ZodPipe(ExtendRequest)) body: ExtendRequest,
  ): Promise<ExtendResponse> {
    return this.settlement.extend(reservationId, body);
  }
}
