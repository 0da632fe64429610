import { Inject, Injectable } from '@nestjs/common';
import {
  type AlertSignal,
  type ControlCommand,
  PLATFORM_TENANT,
  type ValidatorSamplesRequest,
} from '@agentmeter/contracts';
import { Clock, samplingVerdict } from '@agentmeter/domain';
import { CostCapConfig } from '../config';
import { COST_CAP_SOURCE } from '../crossings/crossings.service';
import { CostCapDatabase } from '../db/database';
import { OutboxPublisher } from '../outbox/outbox.publisher';
import { OutboxRepository } from '../outbox/outbox.repository';
import { OverridesRepository } from '../overrides/overrides.repository';
import { SettingsCache } from '../settings/settings.cache';
import { SamplingRepository } from './sampling.repository';

/** The rule id of the Admin alert raised when a playbook's Publisher freezes (agent.alerts.v1). */
const PUBLISHER_FROZEN_RULE = 'service.cost_cap.publisher_frozen';

/**
 * Validator sampling (docs/cost-cap.md "Crossings, commands and alerts"): the daily sampling job posts the strict-mode
 * Validator results of sampled proofs; when the failure share of a playbook's samples in the window is
 * above the threshold (with enough samples), the Publisher of that playbook is frozen: admission denies
 * its publisher calls, a freeze_publisher command goes to the Coordinator and an Admin alert to the alert
 * service. The freeze is claimed in PostgreSQL (one row per playbook), so it happens once until unfrozen.
 */
@Injectable()
export class SamplingService {
  constructor(
    @Inject(CostCapConfig) private readonly config: CostCapConfig,
    private readonly db: CostCapDatabase,
    private readonly repository: SamplingRepository,
    private readonly overrides: OverridesRepository,
    private readonly outbox: OutboxRepository,
    private readonly publisher: OutboxPublisher,
    private readonly cache: SettingsCache,
    private readonly clock: Clock,
  ) {}

  async record(playbook: string, request: ValidatorSamplesRequest) {
    const now = this.clock.now();
    const policy = {
      failureThreshold: this.config.COST_CAP_VALIDATOR_FAILURE_THRESHOLD,
      minSamples: this.config.COST_CAP_VALIDATOR_MIN_SAMPLES,
    };
    const since = new Date(now.getTime() - this.config.COST_CAP_VALIDATOR_WINDOW_HOURS * 3_600_000);
    const outcome = await this.db.transaction(async (tx) => {
      const inserted = await this.repository.insertSamples(tx, playbook, request.samples, now);
      const counts = await this.repository.windowCounts(tx, playbook, since);
      const verdict = samplingVerdict(counts.samples, counts.failures, policy);
      let newlyFrozen = false;
      if (verdict.freeze) {
        const reason = `strict-mode Validator failed ${verdict.failures} of ${verdict.samples} samples in ${this.config.COST_CAP_VALIDATOR_WINDOW_HOURS} h (threshold ${policy.failureThreshold})`;
        newlyFrozen = await this.repository.claimFreeze(tx, {
          playbook,
          at: now,
          reason,
          samples: verdict.samples,
          failures: verdict.failures,
        });
        if (newlyFrozen) {
          const auditId = await this.overrides.audit(tx, {
            tenantId: null,
            actor: 'cost-cap',
            action: 'freeze_publisher',
            target: `playbook:${playbook}`,
            old: { frozen: false },
            new: { frozen: true, samples: verdict.samples, failures: verdict.failures },
            reason,
            at: now,
          });
          const command: ControlCommand = {
            version: 1,
            type: 'freeze_publisher',
            command_id: `audit-${auditId}`,
            issued_at: now.toISOString(),
            issued_by: 'cost-cap',
            reason,
            playbook,
            samples: verdict.samples,
            failures: verdict.failures,
            failure_rate: verdict.failureRate,
            threshold: policy.failureThreshold,
          };
          const alert: AlertSignal = {
            version: 1,
            id: `audit-${auditId}`,
            source: COST_CAP_SOURCE,
            time: now.toISOString(),
            rule: PUBLISHER_FROZEN_RULE,
            tenant_id: PLATFORM_TENANT,
            scope: `playbook:${playbook}`,
            period: now.toISOString().slice(0, 10),
            status: 'firing',
            severity: 'critical',
            audience: 'admin',
            title: `Publisher frozen for playbook "${playbook}"`,
            body: `${reason}. Publishing is denied until an operator unfreezes it (POST /v1/playbooks/{playbook}/unfreeze).`,
            threshold: String(policy.failureThreshold),
            labels: { playbook },
          };
          await this.outbox.enqueue(tx, [
            {
              messageId: `control:${command.command_id}`,
              topic: 'control',
              key: `playbook:${playbook}`,
              payload: command,
            },
            { messageId: `alert:${alert.id}`, topic: 'alerts', key: PLATFORM_TENANT, payload: alert },
          ]);
        }
      }
      return { inserted, verdict, newlyFrozen };
    });
    if (outcome.newlyFrozen) {
      await this.cache.changed('playbooks');
      this.publisher.kick();
    }
    const frozen = await this.repository.isFrozen(playbook);
    return {
      playbook,
      recorded: outcome.inserted,
      window_hours: this.config.COST_CAP_VALIDATOR_WINDOW_HOURS,
      samples: outcome.verdict.samples,
      failures: outcome.verdict.failures,
      failure_rate: outcome.verdict.failureRate,
      threshold: policy.failureThreshold,
      frozen,
      newly_frozen: outcome.newlyFrozen,
    };
  }
}
