import { useState } from 'react';
import { api, data } from '../api/client';
import { usePermission } from '../api/hooks';
import { keys } from '../api/keys';
import { ActionForm } from '../components/ActionForm';
import { TextField } from '../components/TextField';
import { count } from '../format';

export interface PromptAuditState {
  tenant_id: string;
  enabled: boolean;
  retention_days: number;
}

/**
 * The tenant's prompt audit setting (docs/events.md "Prompt audit") and, for roles holding
 * `prompt_audit.manage`, the switch: turning it on or off is confirmed in a dialog that says what it means,
 * audited with its reason (PUT /tenants/{id}/prompt-audit).
 */
export function PromptAuditSetting({ setting }: { setting: PromptAuditState }) {
  const mayManage = usePermission('prompt_audit.manage');
  return (
    <>
      <dl className="facts" data-testid="prompt-audit-setting">
        <div>
          <dt>Prompt audit</dt>
          <dd>
            <span
              className={`status ${setting.enabled ? 'status-succeeded' : 'status-off'}`}
              data-testid="prompt-audit-status"
            >
              {setting.enabled ? 'On' : 'Off'}
            </span>
          </dd>
        </div>
        <div>
          <dt>Texts kept for</dt>
          <dd data-testid="prompt-audit-retention">{count(setting.retention_days)} days</dd>
        </div>
      </dl>
      {mayManage ? (
        <div className="row-actions">
          <PromptAuditSwitch setting={setting} />
          {setting.enabled ? <RetentionChange setting={setting} /> : null}
        </div>
      ) : null}
    </>
  );
}

function put(tenantId: string, body: { enabled: boolean; retention_days?: number; reason: string }) {
  return data(api.PUT('/tenants/{tenant_id}/prompt-audit', { params: { path: { tenant_id: tenantId } }, body }));
}

function PromptAuditSwitch({ setting }: { setting: PromptAuditState }) {
  const [days, setDays] = useState(String(setting.retention_days));
  const turnOn = !setting.enabled;
  return (
    <ActionForm
      label={turnOn ? 'Turn on prompt audit' : 'Turn off prompt audit'}
      dialog={
        turnOn
          ? `Turn on the prompt audit of ${setting.tenant_id}?`
          : `Turn off the prompt audit of ${setting.tenant_id}?`
      }
      submitLabel={turnOn ? 'Turn on' : 'Turn off'}
      danger={!turnOn}
      fields={['retention_days']}
      run={(reason) =>
        put(
          setting.tenant_id,
          turnOn ? { enabled: true, retention_days: Number(days), reason } : { enabled: false, reason },
        )
      }
      invalidate={[keys.tenants.promptAuditAll(setting.tenant_id)]}
    >
      {(errors) =>
        turnOn ? (
          <>
            <p>
              From the next batch of events, ingest stores the <strong>prompt and completion texts</strong> of every LLM
              call of this tenant, after redaction (secrets and personal data become <code>[REDACTED:kind]</code>).
              Admins and the tenant&apos;s Owners can read them on this page. Each text is deleted after the retention
              below, even if the audit is turned off later.
            </p>
            <TextField
              label="Keep texts for (days, 1 to 365)"
              type="number"
              value={days}
              onChange={(e) => setDays(e.target.value)}
              error={errors.retention_days}
              required
            />
          </>
        ) : (
          <p>
            Ingest stops storing new prompt texts of this tenant. The texts stored so far stay readable until their
            retention of {count(setting.retention_days)} days ends.
          </p>
        )
      }
    </ActionForm>
  );
}

function RetentionChange({ setting }: { setting: PromptAuditState }) {
  const [days, setDays] = useState(String(setting.retention_days));
  return (
    <ActionForm
      label="Change retention"
      fields={['retention_days']}
      run={(reason) => put(setting.tenant_id, { enabled: true, retention_days: Number(days), reason })}
      invalidate={[keys.tenants.promptAuditAll(setting.tenant_id)]}
    >
      {(errors) => (
        <TextField
          label="Keep texts for (days, 1 to 365)"
          type="number"
          value={days}
          onChange={(e) => setDays(e.target.value)}
          error={errors.retention_days}
          required
        />
      )}
    </ActionForm>
  );
}
