import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { AlertRules, PLATFORM_TENANT, type AlertmanagerWebhook, type AlertSeverity } from '@agentmeter/contracts';
import { AuditRepository } from '../audit/audit.repository';
import { LifecycleService, type Observation } from '../lifecycle/lifecycle.service';

const SEVERITIES: Record<string, AlertSeverity> = {
  critical: 'critical',
  page: 'critical',
  error: 'critical',
  warning: 'warning',
  warn: 'warning',
  info: 'info',
  none: 'info',
};

/**
 * Prometheus Alertmanager's webhook (docs/alert.md "Alertmanager": -> /observability/alerts -> the audit log).
 * Each alert is written to alert_audit, then routed like our own alerts under rule "external.alertmanager":
 * - key: scope "<alertname>:<fingerprint>" (the fingerprint Alertmanager computes from the labels);
 * - tenant: the label tenant_id (or tenant), else the platform ("*");
 * - audience: Owners when the label audience=owner names a tenant, else Admins;
 * - severity: the label severity (critical/page/error, warning/warn, info/none), default warning;
 * - title: the summary annotation, else the alert name; body: the description annotation;
 * - grouped by Alertmanager's groupKey (one message per Alertmanager group, never two groups merged).
 * Alertmanager repeats firing alerts every repeat_interval; the lifecycle sends them once (and again only
 * after the rule's own repeat interval), and sends "resolved" when Alertmanager does.
 */
@Injectable()
export class AlertmanagerService {
  constructor(
    private readonly audit: AuditRepository,
    private readonly lifecycle: LifecycleService,
  ) {}

  async receive(payload: AlertmanagerWebhook): Promise<{ received: number; notified: number }> {
    const observations = payload.alerts.map((alert): Observation => {
      const labels = alert.labels;
      const name = labels.alertname ?? 'unnamed';
      const tenantId = labels.tenant_id ?? labels.tenant ?? PLATFORM_TENANT;
      const fingerprint =
        alert.fingerprint ??
        createHash('sha256')
          .update(JSON.stringify(sorted(labels)))
          .digest('hex')
          .slice(0, 16);
      const summary = alert.annotations.summary ?? payload.commonAnnotations.summary;
      const description = alert.annotations.description ?? payload.commonAnnotations.description ?? summary ?? '';
      return {
        rule: AlertRules.Alertmanager,
        tenantId,
        scope: `${name}:${fingerprint}`,
        period: '',
        firing: alert.status === 'firing',
        audience: labels.audience === 'owner' && tenantId !== PLATFORM_TENANT ? 'owner' : 'admin',
        severity: SEVERITIES[(labels.severity ?? '').toLowerCase()] ?? 'warning',
        title: summary ?? name,
        body: [description, alert.generatorURL ? `Source: ${alert.generatorURL}` : ''].filter(Boolean).join('\n'),
        thresholdFingerprint: '',
        // Alertmanager's own grouping (its group_by labels): its groups stay apart in our messages too.
        groupKey: payload.groupKey,
      };
    });
    await this.audit.record(
      payload.alerts.map((alert, index) => ({
        tenantId: observations[index]!.tenantId === PLATFORM_TENANT ? null : observations[index]!.tenantId,
        actor: `alertmanager:${payload.receiver}`,
        action: `alertmanager.${alert.status}`,
        target: observations[index]!.scope,
        reason: observations[index]!.title,
        detail: {
          group_key: payload.groupKey,
          labels: alert.labels,
          annotations: alert.annotations,
          starts_at: alert.startsAt,
          ends_at: alert.endsAt ?? null,
          generator_url: alert.generatorURL ?? null,
          external_url: payload.externalURL,
        },
      })),
    );
    const outcomes = await this.lifecycle.observe(observations);
    return { received: payload.alerts.length, notified: outcomes.filter((o) => o.notification).length };
  }
}

function sorted(labels: Record<string, string>): Array<[string, string]> {
  return Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
