import { AlertmanagerWebhook } from '@agentmeter/contracts';
import type { AuditEntry, AuditRepository } from '../audit/audit.repository';
import type { LifecycleService, Observation } from '../lifecycle/lifecycle.service';
import { AlertmanagerService } from './alertmanager.service';

describe('AlertmanagerService', () => {
  function service() {
    const audited: AuditEntry[] = [];
    const observed: Observation[] = [];
    const audit = {
      record: async (entries: AuditEntry[]) => void audited.push(...entries),
    } as unknown as AuditRepository;
    const lifecycle = {
      observe: async (observations: Observation[]) => {
        observed.push(...observations);
        return observations.map(() => ({ key: 'k', decision: { action: 'none' } }));
      },
    } as unknown as LifecycleService;
    return { alertmanager: new AlertmanagerService(audit, lifecycle), audited, observed };
  }

  const payload = (alerts: unknown[]) =>
    AlertmanagerWebhook.parse({
      version: '4',
      groupKey: 'g',
      status: 'firing',
      receiver: 'agentmeter',
      commonAnnotations: { summary: 'common summary' },
      alerts,
    });

  it.each([
    [
      'a platform alert to Admins, by default severity',
      { alertname: 'DlqGrowing' },
      { tenantId: '*', audience: 'admin', severity: 'warning', scope: 'DlqGrowing:fp1' },
    ],
    [
      'a tenant alert for Owners when labelled so',
      { alertname: 'X', tenant_id: 'acme', audience: 'owner', severity: 'page' },
      { tenantId: 'acme', audience: 'owner', severity: 'critical' },
    ],
    [
      'owner audience without a tenant stays with Admins',
      { alertname: 'X', audience: 'owner', severity: 'info' },
      { tenantId: '*', audience: 'admin', severity: 'info' },
    ],
  ])('maps %s', async (_name, labels, expected) => {
    const { alertmanager, observed, audited } = service();
    await alertmanager.receive(
      payload([{ status: 'firing', labels, annotations: {}, startsAt: '2026-11-25T10:00:00Z', fingerprint: 'fp1' }]),
    );
    expect(observed[0]).toMatchObject({
      rule: 'external.alertmanager',
      firing: true,
      title: 'common summary',
      ...expected,
    });
    expect(audited[0]).toMatchObject({ action: 'alertmanager.firing', actor: 'alertmanager:agentmeter' });
  });

  it('keys alerts without a fingerprint by their labels, whatever their order', async () => {
    const { alertmanager, observed } = service();
    await alertmanager.receive(
      payload([
        { status: 'resolved', labels: { alertname: 'A', b: '1', c: '2' }, startsAt: 'x' },
        { status: 'resolved', labels: { c: '2', b: '1', alertname: 'A' }, startsAt: 'x' },
      ]),
    );
    expect(observed[0]!.scope).toBe(observed[1]!.scope);
    expect(observed[0]!.firing).toBe(false);
  });
});
