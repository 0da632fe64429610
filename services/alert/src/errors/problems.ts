import { HttpStatus } from '@nestjs/common';
import type { ProblemMapping } from '@agentmeter/http';

/** How alert answers its domain errors, beyond the common ones of @agentmeter/http. */
export const ALERT_PROBLEMS: Record<string, ProblemMapping> = {
  // A webhook or Slack URL refused by the SSRF checks (TargetRefusedError of libs/domain).
  TARGET_REFUSED: { status: HttpStatus.BAD_REQUEST },
};
