import { Foundation1764100000000 } from './1764100000000-foundation';
import { IngestProjections1764200000000 } from './1764200000000-ingest-projections';
import { Pricing1764300000000 } from './1764300000000-pricing';
import { CostCap1764400000000 } from './1764400000000-cost-cap';
import { Alert1764500000000 } from './1764500000000-alert';
import { Query1764600000000 } from './1764600000000-query';
import { UsageModelDaily1764700000000 } from './1764700000000-usage-model-daily';
import { CostCapIdempotency1764710000000 } from './1764710000000-cost-cap-idempotency';
import { CostCapHolds1764720000000 } from './1764720000000-cost-cap-holds';
import { RunsDropInterventions1764800000000 } from './1764800000000-runs-drop-interventions';
import { EventsPayloadJson1764810000000 } from './1764810000000-events-payload-json';
import { RunOwners1764900000000 } from './1764900000000-run-owners';
import { TrueNumbers1765100000000 } from './1765100000000-true-numbers';
import { AlertPagerDuty1765200000140 } from './1765200000140-alert-pagerduty';
import { AlertGroupKey1765200000141 } from './1765200000141-alert-group-key';
import { AlertMuteReplay1765300000000 } from './1765300000000-alert-mute-replay';
import { LlmCallSpans1765300000100 } from './1765300000100-llm-call-spans';
import { PriceAdmin1765400000000 } from './1765400000000-price-admin';
import { PromptAudit1765400000100 } from './1765400000100-prompt-audit';
import { LlmCallsIndexes1765500000000 } from './1765500000000-llm-calls-indexes';
import { CallFactsStoredOnce1765600000000 } from './1765600000000-call-facts-stored-once';

/** Every migration, in order. Listed explicitly so compiled and test builds run the same set. */
export const MIGRATIONS = [
  Foundation1764100000000,
  IngestProjections1764200000000,
  Pricing1764300000000,
  CostCap1764400000000,
  Alert1764500000000,
  Query1764600000000,
  UsageModelDaily1764700000000,
  CostCapIdempotency1764710000000,
  CostCapHolds1764720000000,
  RunsDropInterventions1764800000000,
  EventsPayloadJson1764810000000,
  RunOwners1764900000000,
  TrueNumbers1765100000000,
  AlertPagerDuty1765200000140,
  AlertGroupKey1765200000141,
  AlertMuteReplay1765300000000,
  LlmCallSpans1765300000100,
  PriceAdmin1765400000000,
  PromptAudit1765400000100,
  LlmCallsIndexes1765500000000,
  CallFactsStoredOnce1765600000000,
];
