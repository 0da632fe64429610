import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Clock, renderGroupedMessage } from '@agentmeter/domain';
import { AlertMetrics } from '../alert.metrics';
import { LOGGER } from '../logger';
import { AlertQueuesClient } from './alert-queues';
import { GroupsRepository, type NewDelivery } from './groups.repository';

/**
 * A group's window passed: its notifications become one message per contact of the audience, plus the
 * group's in-app banners. The deliveries are rows first (the claim), jobs second; a lost job is found by
 * the sweep, a duplicate job finds its row already sent.
 */
@Injectable()
export class GroupsService {
  constructor(
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly repository: GroupsRepository,
    private readonly queues: AlertQueuesClient,
    private readonly metrics: AlertMetrics,
    private readonly clock: Clock,
  ) {}

  async flush(groupId: string, now: Date = this.clock.now()): Promise<NewDelivery[]> {
    const created = await this.repository.transaction(async (tx) => {
      const group = await this.repository.close(tx, groupId, now);
      if (!group) return [];
      const items = await this.repository.items(tx, groupId);
      if (items.length === 0) return [];
      const contacts = await this.repository.contactsOfTenant(tx, group.tenant_id, group.audience);
      const targets = [{ id: null, channel: 'banner' as const }, ...contacts];
      const deliveries: NewDelivery[] = targets.map((target) => {
        const id = randomUUID();
        return {
          id,
          groupId,
          tenantId: group.tenant_id,
          audience: group.audience,
          rule: group.rule,
          channel: target.channel,
          contactId: target.id,
          message: renderGroupedMessage({
            deliveryId: id,
            tenantId: group.tenant_id,
            rule: group.rule,
            audience: group.audience,
            items,
            ...(group.muted_by
              ? {
                  muted: {
                    by: group.muted_by,
                    from: group.muted_from ?? now,
                    until: group.muted_until ?? now,
                  },
                }
              : {}),
          }),
        };
      });
      return this.repository.insertDeliveries(tx, deliveries);
    });
    for (const delivery of created) {
      this.metrics.deliveriesCreated.inc({ channel: delivery.channel });
      await this.queues.deliver(delivery.channel, delivery.id);
    }
    if (created.length > 0) {
      this.logger.info(
        { group_id: groupId, tenant_id: created[0]!.tenantId, rule: created[0]!.rule, deliveries: created.length },
        'alert group flushed',
      );
    }
    return created;
  }
}
