import { HttpStatus } from '@nestjs/common';
import type { ProblemMapping } from '@agentmeter/http';

/** A request that is well-formed but cannot be acted on (an estimate for a model without a price). */
export class UnprocessableError extends Error {
  readonly code = 'UNPROCESSABLE';
}

/** How cost-cap answers its domain errors, beyond the common ones of @agentmeter/http. */
export const COST_CAP_PROBLEMS: Record<string, ProblemMapping> = {
  UNPROCESSABLE: { status: HttpStatus.UNPROCESSABLE_ENTITY },
  // Counters being rebuilt from the ledger (CountersRebuildingError): a retry in a moment succeeds.
  REBUILDING: { status: HttpStatus.SERVICE_UNAVAILABLE, retryAfter: true },
  INVALID_MONEY: { status: HttpStatus.BAD_REQUEST },
};
