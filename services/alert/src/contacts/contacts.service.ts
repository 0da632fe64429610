import { Inject, Injectable } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import type { CreateContactBody } from '@agentmeter/contracts';
import { SecretBox } from '@agentmeter/domain';
import { AuditRepository } from '../audit/audit.repository';
import { AlertConfig } from '../config';
import { NotFoundError } from '@agentmeter/http';
import { DisabledError } from '@agentmeter/http';
import { ContactsRepository, type ContactRow } from './contacts.repository';
import { TargetChecker } from './target-checker';

export interface ContactView {
  id: string;
  tenant_id: string | null;
  audience: string;
  channel: string;
  /** The e-mail address, or only the host of a URL (the rest of it is a credential). */
  target: string;
  failing_since: string | null;
  created_at: string;
  created_by: string;
}

/** Contacts: who hears about alerts. URLs are checked (SSRF) and encrypted before they are stored. */
@Injectable()
export class ContactsService {
  private readonly box: SecretBox | null;

  constructor(
    @Inject(AlertConfig) config: AlertConfig,
    private readonly repository: ContactsRepository,
    private readonly targets: TargetChecker,
    private readonly audit: AuditRepository,
  ) {
    this.box = config.ALERT_ENCRYPTION_KEY ? SecretBox.fromConfig(config.ALERT_ENCRYPTION_KEY) : null;
  }

  async create(body: CreateContactBody): Promise<ContactView & { signing_secret?: string }> {
    const id = randomUUID();
    let email: string | null = null;
    let urlEncrypted: Buffer | null = null;
    let urlHost: string | null = null;
    let secretEncrypted: Buffer | null = null;
    let signingSecret: string | undefined;
    if (body.channel === 'email') {
      email = body.target.trim();
    } else {
      if (!this.box) throw new DisabledError(`${body.channel} contacts need ALERT_ENCRYPTION_KEY to be configured`);
      // PagerDuty's endpoint is checked as a webhook: public https, loopback only where the deployment allows it.
      const target = await this.targets.check(body.target, body.channel === 'pagerduty' ? 'webhook' : body.channel);
      urlHost = target.host;
      urlEncrypted = this.box.seal(body.target, `contact:${id}:url`);
      if (body.channel === 'webhook') {
        signingSecret = body.signing_secret ?? `whsec_${randomBytes(32).toString('base64url')}`;
        secretEncrypted = this.box.seal(signingSecret, `contact:${id}:secret`);
      }
      if (body.channel === 'pagerduty') secretEncrypted = this.box.seal(body.routing_key!, `contact:${id}:secret`);
    }
    const row = await this.repository.transaction(async (tx) => {
      const created = await this.repository.insert(tx, {
        id,
        tenantId: body.tenant_id,
        audience: body.audience,
        channel: body.channel,
        email,
        urlEncrypted,
        urlHost,
        secretEncrypted,
        createdBy: body.actor,
      });
      await this.audit.record(
        [
          {
            tenantId: body.tenant_id,
            actor: body.actor,
            action: 'contact.create',
            target: id,
            reason: body.reason,
            detail: { audience: body.audience, channel: body.channel, host: urlHost, email },
          },
        ],
        tx,
      );
      return created;
    });
    return { ...view(row), ...(signingSecret ? { signing_secret: signingSecret } : {}) };
  }

  async list(tenantId: string | null): Promise<ContactView[]> {
    return (await this.repository.listOfTenant(tenantId)).map(view);
  }

  async delete(tenantId: string | null, id: string, actor: string, reason: string): Promise<void> {
    await this.repository.transaction(async (tx) => {
      const row = await this.repository.softDelete(tx, tenantId, id, actor);
      if (!row) throw new NotFoundError(`no contact ${id} for ${tenantId ?? 'the platform'}`);
      await this.audit.record([{ tenantId, actor, action: 'contact.delete', target: id, reason, detail: {} }], tx);
    });
  }
}

function view(row: ContactRow): ContactView {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    audience: row.audience,
    channel: row.channel,
    target: row.email ?? `https://${row.url_host ?? '?'}/…`,
    failing_since: row.failing_since?.toISOString() ?? null,
    created_at: row.created_at.toISOString(),
    created_by: row.created_by,
  };
}
