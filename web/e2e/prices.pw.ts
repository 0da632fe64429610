import { expect, type Page, test } from '@playwright/test';
import { capture, signIn } from './pages';
import { api, publish, runEvents, token, world } from './world';

/**
 * Prices /admin/prices (docs/console.md "Prices"): an Admin adds a price and sees it in the table, the API's
 * refusal of a bad field shown next to that field, a reprice of a period followed to its result, and the
 * page's absence for every other role.
 */
const admin = () => token(`${world().prefix}-platform`, ['admin']);

interface AuditPage {
  items: Array<{ id: string; action: string; target: string; reason: string | null; outcome: string }>;
}

/** The audit entry whose id the page reported after the action. */
async function audited(page: Page, action: string) {
  const done = page.getByTestId('action-done');
  await expect(done).toBeVisible();
  const auditId = (await done.textContent())!.replace(/^.*audit\s+/, '').trim();
  const entries = await api<AuditPage>(await admin(), `/audit?action=${encodeURIComponent(action)}&limit=200`);
  return entries.items.find((item) => item.id === auditId);
}

/** A model name of this test run only (the price table is shared by every tenant). */
function modelName(name: string): string {
  return `${world().prefix}-${name}-${Math.random().toString(36).slice(2, 8)}`;
}

function priceForm(page: Page) {
  return page.getByRole('form', { name: 'Add a price' });
}

async function fillPrice(page: Page, fields: { model: string; input: string; output: string; from?: string }) {
  const form = priceForm(page);
  await form.getByLabel('Provider').fill('openai');
  await form.getByLabel('Model').fill(fields.model);
  await form.getByLabel('Effective from (UTC)').fill(fields.from ?? '');
  await form.getByLabel('Input, USD per 1M tokens').fill(fields.input);
  await form.getByLabel('Output, USD per 1M tokens').fill(fields.output);
  await form.getByLabel('Reason (recorded in the audit log)').fill('console e2e: list price');
}

test.describe('Prices /admin/prices', () => {
  test('an Admin adds a price and a scheduled one, sees them in the table, and reprices a period', async ({ page }) => {
    const model = modelName('model');
    await signIn(page, await admin(), '/');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Prices' }).click();
    await expect(page).toHaveURL(/\/admin\/prices$/);
    await expect(page.getByRole('heading', { name: 'Prices', level: 1 })).toBeVisible();

    await page.getByRole('button', { name: 'Add a price' }).click();
    await fillPrice(page, { model, input: '2.5', output: '10' });
    await priceForm(page).getByRole('button', { name: 'Add a price' }).click();
    expect(await audited(page, 'prices.create')).toMatchObject({
      target: `openai/${model}`,
      reason: 'console e2e: list price',
      outcome: 'succeeded',
    });
    const rows = page.getByTestId('prices').getByRole('row', { name: new RegExp(model) });
    await expect(rows).toHaveCount(1);
    await expect(rows.first()).toContainText('current');
    await expect(rows.first()).toContainText('$2.50');
    await expect(rows.first()).toContainText('$10.00');

    // A price from tomorrow 00:00 UTC: scheduled, listed above the one in force (newest start first).
    const tomorrow = new Date(
      Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1),
    );
    await fillPrice(page, { model, input: '3', output: '12', from: tomorrow.toISOString().slice(0, 16) });
    await priceForm(page).getByRole('button', { name: 'Add a price' }).click();
    await expect(rows).toHaveCount(2);
    await expect(rows.first()).toContainText('scheduled');
    await expect(rows.first()).toContainText('$3.00');
    await expect(rows.nth(1)).toContainText('current');
    await priceForm(page).getByRole('button', { name: 'Close' }).click();

    // A call of the model right after its price started: ingest reloads its price table every 60 s, so it
    // may store the call unpriced; the reprice prices it at the stored price either way.
    const run = {
      tenant_id: `${world().prefix}-tenant-1`,
      project_id: `${world().prefix}-t1-project-1`,
      run_id: `${model}-run`,
    };
    const at = runEvents(run, 'console-e2e/prices');
    await publish([
      at('run_started', 0, { model }),
      at('llm_call', 0, {
        phase: 'plan',
        role: 'planner',
        attempt: 1,
        model,
        provider: 'openai',
        prompt_tokens: 1_000_000,
        completion_tokens: 100_000,
        latency_ms: 900,
      }),
    ]);
    await expect
      .poll(
        async () =>
          (
            await api<{ items: Array<{ llm_calls: number }> }>(
              await admin(),
              `/runs?tenant_id=${run.tenant_id}&model=${encodeURIComponent(model)}`,
            )
          ).items[0]?.llm_calls ?? 0,
        { timeout: 30_000 },
      )
      .toBe(1);

    // The reprice of the last hour prices the call: 1 M input tokens at $2.50 and 100 k output at $10.
    await page.getByRole('button', { name: 'Start a reprice' }).click();
    const reprice = page.getByRole('form', { name: 'Start a reprice' });
    const minute = (ms: number) => new Date(Date.now() + ms).toISOString().slice(0, 16);
    await reprice.getByLabel('From (UTC)').fill(minute(-3_600_000));
    await reprice.getByLabel('To (UTC, not included)').fill(minute(3_600_000));
    await reprice.getByLabel('Model (empty: every model)').fill(model);
    await reprice.getByLabel('Reason (recorded in the audit log)').fill('console e2e: price the unpriced call');
    await reprice.getByRole('button', { name: 'Start a reprice' }).click();
    expect(await audited(page, 'prices.reprice')).toMatchObject({ target: model, outcome: expect.any(String) });
    const request = page.getByTestId('reprices').getByRole('row', { name: new RegExp(`model ${model}`) });
    await expect(request).toHaveCount(1);
    await expect(request).toContainText('succeeded', { timeout: 30_000 });
    await expect(request).toContainText(/[01] of 1 calls changed/);
    await expect(request).toContainText(/\$(0\.00|3\.50) → \$3\.50/);
    await expect(request).toContainText(/unpriced [01] → 0/);

    await reprice.getByRole('button', { name: 'Close' }).click();
    await page.getByLabel('Include history (superseded and retired)').check();
    await expect(page).toHaveURL(/history=true/);
    // One provider's prices, for a screenshot of a readable length.
    await page.getByRole('form', { name: 'Price filters' }).getByLabel('Provider').fill('openai');
    await page.getByRole('button', { name: 'Apply' }).click();
    await expect(page).toHaveURL(/provider=openai/);
    await expect(page.getByTestId('prices').getByRole('row', { name: /anthropic/ })).toHaveCount(0);
    await expect(rows).toHaveCount(2);
    await capture(page, 'prices');
  });

  test('a bad rate or a start in the past: the API says why, next to the field it names', async ({ page }) => {
    await signIn(page, await admin(), '/admin/prices');
    await page.getByRole('button', { name: 'Add a price' }).click();
    const form = priceForm(page);
    const model = modelName('refused');
    await fillPrice(page, { model, input: '-1', output: '10' });
    await form.getByRole('button', { name: 'Add a price' }).click();
    const input = form.getByLabel('Input, USD per 1M tokens');
    await expect(input).toHaveAttribute('aria-invalid', 'true');
    await expect(input).toHaveAccessibleDescription(/a rate must not be negative/);
    await expect(form.getByLabel('Output, USD per 1M tokens')).not.toHaveAttribute('aria-invalid', 'true');
    await expect(form.getByRole('alert')).toHaveText('Check the fields marked above.');

    await input.fill('2.5');
    await form.getByLabel('Effective from (UTC)').fill('2020-01-01T00:00');
    await form.getByRole('button', { name: 'Add a price' }).click();
    const from = form.getByLabel('Effective from (UTC)');
    await expect(from).toHaveAttribute('aria-invalid', 'true');
    await expect(from).toHaveAccessibleDescription(/must be now or later; to change the cost of past calls/);
    await expect(input).not.toHaveAttribute('aria-invalid', 'true');
    await expect(page.getByTestId('prices').getByRole('row', { name: new RegExp(model) })).toHaveCount(0);
  });

  for (const roles of [['owner'], ['op'], ['auditor']]) {
    test(`a ${roles.join('+')} has no Prices link, and the address says it is not allowed`, async ({ page }) => {
      await signIn(page, await token(`${world().prefix}-tenant-1`, roles), '/');
      await expect(page.getByTestId('who')).toBeVisible();
      await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Prices' })).toHaveCount(0);
      await page.goto('/admin/prices');
      await expect(page.getByTestId('not-allowed')).toContainText('Your role may not manage prices.');
      await expect(page.getByTestId('prices')).toHaveCount(0);
      await expect(page.getByRole('button', { name: 'Add a price' })).toHaveCount(0);
    });
  }
});
