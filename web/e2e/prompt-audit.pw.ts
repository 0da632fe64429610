import { expect, type Page, test } from '@playwright/test';
import { capture, signIn } from './pages';
import { api, publish, runEvents, token, world } from './world';

/**
 * Prompt audit /tenants/{id}/prompt-audit (docs/console.md "Prompt audit"): the tenant's Owner turns it on
 * (confirmed in a dialog, audited), the texts of the next LLM calls appear redacted and newest first, and it
 * is turned off again; an Owner of another tenant and the roles that may not read it see no text.
 */
const tenant = (n: 1 | 2) => `${world().prefix}-tenant-${n}`;

interface PromptAudit {
  enabled: boolean;
  retention_days: number;
  items: Array<{ prompt: string | null; completion: string | null; run_id: string }>;
}
interface AuditPage {
  items: Array<{ id: string; action: string; target: string; reason: string | null; outcome: string }>;
}

async function auditEntry(page: Page, action: string) {
  const done = page.getByTestId('action-done');
  await expect(done).toBeVisible();
  const auditId = (await done.textContent())!.replace(/^.*audit\s+/, '').trim();
  const entries = await api<AuditPage>(
    await token(`${world().prefix}-platform`, ['admin']),
    `/audit?action=${encodeURIComponent(action)}&limit=200`,
  );
  return entries.items.find((item) => item.id === auditId);
}

test.describe('Prompt audit /tenants/{id}/prompt-audit', () => {
  test('the Owner turns it on, sees the redacted texts newest first, and turns it off', async ({ page }) => {
    const t1 = tenant(1);
    const owner = await token(t1, ['owner']);
    await signIn(page, owner, `/tenants/${t1}`);
    const summary = page.getByTestId('prompt-audit-summary');
    await expect(summary).toContainText('Off');
    await page.getByRole('link', { name: 'Open the prompt audit' }).click();
    await expect(page).toHaveURL(new RegExp(`/tenants/${t1}/prompt-audit$`));
    await expect(page.getByRole('heading', { name: 'Prompt audit', level: 1 })).toBeVisible();
    await expect(page.getByTestId('prompt-audit-status')).toHaveText('Off');

    await page.getByRole('button', { name: 'Turn on prompt audit' }).click();
    const dialog = page.getByRole('dialog', { name: `Turn on the prompt audit of ${t1}?` });
    await expect(dialog).toContainText('prompt and completion texts');
    await expect(dialog).toContainText('[REDACTED:kind]');
    await dialog.getByLabel('Keep texts for (days, 1 to 365)').fill('400');
    await dialog.getByLabel('Reason (recorded in the audit log)').fill('console e2e: debug prompts');
    await dialog.getByRole('button', { name: 'Turn on' }).click();
    await expect(dialog.getByLabel('Keep texts for (days, 1 to 365)')).toHaveAccessibleDescription(
      /less than or equal to 365|<=365/,
    );
    await dialog.getByLabel('Keep texts for (days, 1 to 365)').fill('14');
    await dialog.getByRole('button', { name: 'Turn on' }).click();
    await expect(dialog).toHaveCount(0);
    expect(await auditEntry(page, 'tenant.prompt_audit')).toMatchObject({
      target: t1,
      reason: 'console e2e: debug prompts',
      outcome: 'succeeded',
    });
    await expect(page.getByTestId('prompt-audit-status')).toHaveText('On');
    await expect(page.getByTestId('prompt-audit-retention')).toHaveText('14 days');

    // Two LLM calls carrying texts, the second one newer; the email address is personal data.
    const run = {
      tenant_id: t1,
      project_id: `${world().prefix}-t1-project-1`,
      run_id: `${world().prefix}-audited-run-${Date.now()}`,
    };
    const at = runEvents(run, 'console-e2e/prompt-audit');
    const call = (secondsAgo: number, prompt: string, completion: string) =>
      at('llm_call', secondsAgo, {
        phase: 'plan',
        role: 'planner',
        attempt: 1,
        model: 'gpt-4.1',
        provider: 'openai',
        prompt_tokens: 12,
        completion_tokens: 4,
        latency_ms: 300,
        prompt,
        completion,
      });
    await publish([
      at('run_started', 30, { model: 'gpt-4.1' }),
      call(20, 'Plan the release and mail sam.owner@example.org when done.', 'Release plan: three steps.'),
      call(10, 'Summarise the plan in one line.', 'Ship on Friday.'),
    ]);
    await expect
      .poll(
        async () => (await api<PromptAudit>(owner, `/tenants/${t1}/prompt-audit?run_id=${run.run_id}`)).items.length,
        {
          timeout: 30_000,
        },
      )
      .toBe(2);
    await page.reload();
    const texts = page.getByTestId('prompt-texts').locator(':scope > li').filter({ hasText: run.run_id });
    await expect(texts).toHaveCount(2);
    await expect(texts.first()).toContainText('Summarise the plan in one line.');
    await expect(texts.first()).toContainText('Ship on Friday.');
    await expect(texts.nth(1)).toContainText('[REDACTED:');
    await expect(texts.nth(1)).not.toContainText('sam.owner@example.org');
    await expect(texts.first().getByRole('link', { name: `Run ${run.run_id}` })).toHaveAttribute(
      'href',
      `/runs/${run.run_id}`,
    );
    await capture(page, 'prompt-audit');

    await page.getByRole('button', { name: 'Turn off prompt audit' }).click();
    const off = page.getByRole('dialog', { name: `Turn off the prompt audit of ${t1}?` });
    await expect(off).toContainText('stops storing new prompt texts');
    await off.getByLabel('Reason (recorded in the audit log)').fill('console e2e: done debugging');
    await off.getByRole('button', { name: 'Turn off' }).click();
    await expect(page.getByTestId('prompt-audit-status')).toHaveText('Off');
    // Turning it off stores nothing new; what is stored stays until its retention ends.
    await expect(texts).toHaveCount(2);
    await page.goto(`/tenants/${t1}`);
    await expect(page.getByTestId('prompt-audit-summary')).toContainText('Off');
    await expect(page.getByTestId('prompt-audit-summary')).toContainText('texts kept for 14 days');
  });

  test("an Owner of another tenant cannot see the tenant's prompt texts", async ({ page }) => {
    const t1 = tenant(1);
    // Whatever the first test left: the texts exist for tenant 1's own Owner only.
    await signIn(page, await token(tenant(2), ['owner']), `/tenants/${t1}/prompt-audit`);
    await expect(page.getByRole('alert')).toContainText('Could not load the prompt audit');
    await expect(page.getByRole('alert')).toContainText('It does not exist, or it is not one your role may see.');
    await expect(page.getByTestId('prompt-texts')).toHaveCount(0);
    await expect(page.getByRole('button', { name: /Turn (on|off) prompt audit/ })).toHaveCount(0);
  });

  test('an OP sees no prompt audit panel, and its address says it is not allowed', async ({ page }) => {
    const t1 = tenant(1);
    await signIn(page, await token(t1, ['op']), `/tenants/${t1}`);
    await expect(page.getByRole('heading', { name: t1, level: 1 })).toBeVisible();
    await expect(page.getByRole('heading', { name: 'Prompt audit' })).toHaveCount(0);
    await page.goto(`/tenants/${t1}/prompt-audit`);
    await expect(page.getByTestId('not-allowed')).toContainText('Your role may not read the prompt audit.');
    await expect(page.getByTestId('prompt-texts')).toHaveCount(0);
  });
});
