import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, type Page, test } from '@playwright/test';
import { count, percent, usd } from '../src/format';
import { chartsDrawn, expectAccessible, overflowing, signIn } from './pages';
import { api, token, world } from './world';

/**
 * The Admin, Tenant and Project Overviews and Analytics (docs/console.md): the numbers the seeded workload
 * implies (as the query API, tested against the ground truth, answers them), each quick action going
 * through cost-cap, alert or the Coordinator's topic and appearing in the audit, CSV downloads, role
 * visibility, axe, and screenshots desktop + phone into docs/console/.
 */
const OUT = join(import.meta.dirname, '..', '..', 'docs', 'console');

async function capture(page: Page, name: string): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' });
  await page.setViewportSize({ width: 1280, height: 900 });
  await chartsDrawn(page, 'light');
  await page.screenshot({ path: join(OUT, `${name}-desktop.png`), fullPage: true, animations: 'disabled' });
  await page.emulateMedia({ colorScheme: 'dark', reducedMotion: 'reduce' });
  await expectAccessible(page);
  await chartsDrawn(page, 'dark');
  await page.screenshot({ path: join(OUT, `${name}-desktop-dark.png`), fullPage: true, animations: 'disabled' });
  await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'reduce' });
  await page.setViewportSize({ width: 390, height: 844 });
  await expectAccessible(page);
  await chartsDrawn(page, 'light');
  await page.screenshot({ path: join(OUT, `${name}-phone.png`), fullPage: true, animations: 'disabled' });
  await page.setViewportSize({ width: 1280, height: 900 });
}

const tenant = (n: 1 | 2) => `${world().prefix}-tenant-${n}`;
const admin = () => token(`${world().prefix}-platform`, ['admin']);

interface AuditPage {
  items: Array<{ id: string; action: string; target: string; reason: string | null; outcome: string }>;
}

/** The audit entry the page reported (its id shown after the action), as GET /audit lists it. */
async function audited(page: Page, action: string) {
  const done = page.getByTestId('action-done');
  await expect(done).toBeVisible();
  const auditId = (await done.textContent())!.replace(/^.*audit\s+/, '').trim();
  const entries = await api<AuditPage>(await admin(), `/audit?action=${encodeURIComponent(action)}&limit=200`);
  return { auditId, entry: entries.items.find((item) => item.id === auditId) };
}

async function csvOf(page: Page, button: ReturnType<Page['getByRole']>): Promise<string> {
  const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
  return readFileSync((await download.path())!, 'utf8');
}

async function apiCsv(credential: string, path: string): Promise<string> {
  const response = await fetch(`${world().queryUrl}${path}`, {
    headers: { authorization: `Bearer ${credential}`, accept: 'text/csv' },
  });
  expect(response.status).toBe(200);
  return response.text();
}

interface AdminOverview {
  spend_today: {
    total_usd: string;
    by_model: Array<{ model: string; cost_usd: string }>;
    by_tenant: Array<{ tenant_id: string; cost_usd: string }>;
  };
  last_failures: Array<{ run_id: string; phase: string; why_blocked: string }>;
  stuck_projects: unknown[];
  trends: { last_7_days: { cost_usd: string }; last_30_days: { cost_usd: string } };
}

test.describe('Admin Overview /admin', () => {
  test("shows today's spend, failures, trends and stuck projects as the API answers them", async ({ page }) => {
    const credential = await admin();
    const overview = await api<AdminOverview>(credential, '/admin/overview');
    expect(overview.last_failures.length).toBeGreaterThan(0);
    await signIn(page, credential, '/admin');
    await expect(page.getByRole('heading', { name: 'Admin Overview' })).toBeVisible();
    await expect(page.getByTestId('spend-total')).toHaveText(usd(overview.spend_today.total_usd));
    for (const t of overview.spend_today.by_tenant) {
      await expect(
        page.getByTestId('spend-by-tenant').getByRole('row', { name: new RegExp(t.tenant_id) }),
      ).toContainText(usd(t.cost_usd));
    }
    await expect(page.getByTestId('failures').locator(':scope > li')).toHaveCount(overview.last_failures.length);
    const first = overview.last_failures[0]!;
    const item = page.getByTestId('failures').locator(':scope > li').first();
    await expect(item).toContainText(first.why_blocked);
    await expect(item.getByRole('link', { name: `Run ${first.run_id}` })).toHaveAttribute(
      'href',
      `/runs/${first.run_id}`,
    );
    await expect(page.getByTestId('trend-cost-7')).toHaveText(usd(overview.trends.last_7_days.cost_usd));
    await page.getByRole('button', { name: '30 days' }).click();
    await expect(page.getByTestId('trend-cost-30')).toHaveText(usd(overview.trends.last_30_days.cost_usd));
    await page.getByRole('button', { name: '7 days' }).click();
    await expectAccessible(page);
    await capture(page, 'admin-overview');
  });

  test('filters by tenant: the numbers of that tenant, its caps and remaining budget', async ({ page }) => {
    const credential = await admin();
    const t2 = tenant(2);
    const filtered = await api<AdminOverview>(credential, `/admin/overview?tenant_id=${t2}`);
    await signIn(page, credential, '/admin');
    await page.getByRole('textbox', { name: 'Tenant' }).fill(t2);
    await page.getByRole('button', { name: 'Apply' }).click();
    await expect(page).toHaveURL(new RegExp(`tenant_id=${t2}`));
    await expect(page.getByTestId('spend-total')).toHaveText(usd(filtered.spend_today.total_usd));
    await expect(page.getByRole('heading', { name: 'Caps and remaining budget' })).toBeVisible();
  });

  test('pause and unpause a tenant: through cost-cap, in the audit, shown in the caps panel', async ({ page }) => {
    const credential = await admin();
    const t2 = tenant(2);
    await signIn(page, credential, `/admin?tenant_id=${t2}`);
    await page.getByRole('button', { name: `Pause ${t2}`, exact: true }).click();
    await page.getByLabel('Reason (recorded in the audit log)').fill('console e2e: budget review');
    await page
      .getByRole('form', { name: `Pause ${t2}` })
      .getByRole('button', { name: `Pause ${t2}`, exact: true })
      .click();
    const paused = await audited(page, 'tenant.pause');
    expect(paused.entry).toMatchObject({
      action: 'tenant.pause',
      target: t2,
      reason: 'console e2e: budget review',
      outcome: 'succeeded',
    });
    await expect(page.getByTestId('paused')).toContainText('console e2e: budget review');
    await page.getByRole('button', { name: 'Close' }).click();

    await page.getByRole('button', { name: `Unpause ${t2}` }).click();
    await page.getByLabel('Reason (recorded in the audit log)').fill('console e2e: review done');
    await page
      .getByRole('form', { name: `Unpause ${t2}` })
      .getByRole('button', { name: `Unpause ${t2}` })
      .click();
    const unpaused = await audited(page, 'tenant.unpause');
    expect(unpaused.entry).toMatchObject({ action: 'tenant.unpause', target: t2, outcome: 'succeeded' });
    await expect(page.getByTestId('paused')).toHaveCount(0);
  });

  test('reopen a phase and rerun the last step of a failed run: sent to the Coordinator, in the audit', async ({
    page,
  }) => {
    const credential = await admin();
    const overview = await api<AdminOverview>(credential, '/admin/overview');
    const failure = overview.last_failures[0]!;
    await signIn(page, credential, '/admin');
    const item = page.getByTestId('failures').locator(':scope > li').first();
    await item.getByRole('button', { name: `Reopen ${failure.phase}` }).click();
    await item.getByLabel('Reason (recorded in the audit log)').fill('console e2e: flaky gate');
    await item
      .getByRole('form')
      .getByRole('button', { name: `Reopen ${failure.phase}` })
      .click();
    const reopened = await audited(page, 'run.reopen_phase');
    expect(reopened.entry).toMatchObject({
      target: failure.run_id,
      reason: 'console e2e: flaky gate',
      outcome: 'succeeded',
    });
    await item.getByRole('button', { name: 'Close' }).click();

    await item.getByRole('button', { name: 'Rerun last step' }).click();
    await item.getByLabel('Reason (recorded in the audit log)').fill('console e2e: rerun');
    await item.getByRole('form').getByRole('button', { name: 'Rerun last step' }).click();
    const rerun = await audited(page, 'run.rerun_last_step');
    expect(rerun.entry).toMatchObject({ target: failure.run_id, outcome: 'succeeded' });
  });

  test('set a cap permanently, then raise it for 72 hours, each with a reason: audited, shown in the caps panel', async ({
    page,
  }) => {
    const credential = await admin();
    const t1 = tenant(1);
    await signIn(page, credential, `/admin?tenant_id=${t1}`);
    await page.getByRole('button', { name: 'Raise a cap' }).click();
    const form = page.getByRole('form', { name: 'Raise a cap' });
    await form.getByLabel('Cap', { exact: true }).selectOption('tenant_daily_cost');
    await form.getByLabel('New limit').fill('50');
    await form.getByLabel('Permanent').check();
    await form.getByLabel('Reason (recorded in the audit log)').fill('console e2e: budget');
    await form.getByRole('button', { name: 'Raise a cap' }).click();
    const set = await audited(page, 'caps.set');
    expect(set.entry).toMatchObject({ target: t1, reason: 'console e2e: budget', outcome: 'succeeded' });
    await expect(page.getByTestId('policy-daily-cap')).toHaveText('$50.00');

    await form.getByLabel('New limit').fill('80');
    await form.getByLabel('72 hours').check();
    await form.getByLabel('Reason (recorded in the audit log)').fill('console e2e: launch day');
    await form.getByRole('button', { name: 'Raise a cap' }).click();
    await expect(page.getByTestId('action-done')).not.toHaveText(`Done · audit ${set.auditId}`);
    const raised = await audited(page, 'caps.raise_72h');
    expect(raised.entry).toMatchObject({ target: t1, reason: 'console e2e: launch day', outcome: 'succeeded' });
    await expect(page.locator('.raises')).toContainText('tenant_daily_cost to $80.00');
  });

  test('Export CSV downloads the same rows the API writes as CSV', async ({ page }) => {
    const credential = await admin();
    await signIn(page, credential, '/admin');
    await expect(page.getByTestId('spend-total')).toBeVisible();
    const csv = await csvOf(page, page.getByRole('button', { name: 'Export CSV' }));
    expect(csv.split('\n')[0]).toContain('section');
    expect(csv).toBe(await apiCsv(credential, '/admin/overview'));
  });
});

interface TenantOverview {
  costs: { today_usd: string; last_7_days_usd: string; last_30_days_usd: string };
  runs: { total: number; succeeded: number; failed: number };
  proofs: { completion_rate: number | null };
  time_to_gate: Array<{ phase: string }>;
  recent_ships: unknown[];
}

test.describe('Tenant Overview /tenants/{id}', () => {
  test("the Owner sees the tenant's costs, runs, proof rate, time to gate and caps", async ({ page }) => {
    const t1 = tenant(1);
    const owner = await token(t1, ['owner']);
    const overview = await api<TenantOverview>(owner, `/tenants/${t1}/overview`);
    await signIn(page, owner, `/tenants/${t1}`);
    await expect(page.getByRole('heading', { name: t1, level: 1 })).toBeVisible();
    const costs = page.getByTestId('tenant-costs');
    await expect(costs).toContainText(usd(overview.costs.today_usd));
    await expect(costs).toContainText(usd(overview.costs.last_7_days_usd));
    await expect(costs).toContainText(usd(overview.costs.last_30_days_usd));
    await expect(page.getByTestId('tenant-runs')).toContainText(count(overview.runs.total));
    await expect(page.getByTestId('proof-rate')).toHaveText(percent(overview.proofs.completion_rate));
    await expect(page.getByTestId('time-to-gate').locator('tbody tr')).toHaveCount(overview.time_to_gate.length);
    await expect(page.getByRole('heading', { name: 'Caps and remaining budget' })).toBeVisible();
    await expect(page.getByRole('link', { name: 'Tenant', exact: true })).toHaveAttribute('href', `/tenants/${t1}`);
    // An Owner may not pause tenants nor open the Admin Overview.
    await expect(page.getByRole('link', { name: 'Admin' })).toHaveCount(0);
    await expect(page.getByRole('button', { name: /^Pause/ })).toHaveCount(0);
    await expectAccessible(page);
    await capture(page, 'tenant-overview');
  });

  test("the Owner mutes the tenant's alerts: through alert, in the audit", async ({ page }) => {
    const t1 = tenant(1);
    const owner = await token(t1, ['owner']);
    await signIn(page, owner, `/tenants/${t1}`);
    await page.getByRole('button', { name: 'Mute alerts' }).click();
    const form = page.getByRole('form', { name: 'Mute alerts' });
    await form.getByLabel('For (hours)').fill('2');
    await form.getByLabel('Reason (recorded in the audit log)').fill('console e2e: maintenance');
    await form.getByRole('button', { name: 'Mute alerts' }).click();
    const muted = await audited(page, 'alerts.mute');
    expect(muted.entry).toMatchObject({ reason: 'console e2e: maintenance', outcome: 'succeeded' });
  });

  test("an Owner of another tenant sees the designed error, not the tenant's numbers", async ({ page }) => {
    await signIn(page, await token(tenant(2), ['owner']), `/tenants/${tenant(1)}`);
    await expect(page.getByRole('alert')).toContainText('Could not load this tenant');
    await expect(page.getByTestId('tenant-costs')).toHaveCount(0);
  });
});

interface ProjectOverview {
  tenant_id: string;
  project_id: string;
  next_action: { action: string; reason: string };
  phase_timeline: Array<{ started_at: string | null }>;
  artifact_heatmap: Array<{ phase: string }>;
  open_flags: unknown[];
  recent_runs: unknown[];
}

test.describe('Project Overview /projects/{id}', () => {
  test('shows the next action, the phase timeline, the artifact heatmap and recent runs', async ({ page }) => {
    const t1 = tenant(1);
    const project = `${world().prefix}-t1-project-1`;
    const op = await token(t1, ['op']);
    const overview = await api<ProjectOverview>(op, `/projects/${project}/overview`);
    await signIn(page, op, `/projects/${project}`);
    await expect(page.getByRole('heading', { name: project, level: 1 })).toBeVisible();
    await expect(page.getByTestId('next-action')).toHaveText(overview.next_action.action.replace(/_/g, ' '));
    await expect(page.locator('.span-row')).toHaveCount(overview.phase_timeline.filter((s) => s.started_at).length);
    await expect(page.locator('table.heatmap tbody tr')).toHaveCount(
      new Set(overview.artifact_heatmap.map((h) => h.phase)).size,
    );
    await expect(page.locator('#recent-runs tbody tr')).toHaveCount(overview.recent_runs.length);
    await expectAccessible(page);
    await capture(page, 'project-overview');
  });
});

interface Usage {
  rows: Array<{ key: string | null; calls: number }>;
  totals: { calls: number; error_rate: number | null };
}
interface Costs {
  totals: { cost_usd: string };
}
interface ToolCallHours {
  rows: Array<{ day_of_week: number; hour: number; calls: number }>;
  totals: { calls: number };
}
interface McpHealth {
  servers: Array<{ server: string; calls: number; failures: number; error_rate: number; breaker_openings: number }>;
}
interface BreakerEvents {
  rows: Array<{ server: string; opened_at: string; closed_at: string | null; failures: number }>;
}
interface ErrorRates {
  rows: Array<{ bucket: string; webhook_attempts: number; webhook_failure_rate: number | null }>;
  totals: {
    tool_calls: number;
    tool_failures: number;
    tool_error_rate: number | null;
    webhook_attempts: number;
    webhook_failures: number;
    webhook_failure_rate: number | null;
  };
}

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

test.describe('Analytics /analytics', () => {
  test('top agents, cost trend, tool heatmap, MCP health and error rates as the API answers them', async ({ page }) => {
    const t1 = tenant(1);
    const owner = await token(t1, ['owner']);
    const agents = await api<Usage>(owner, '/api/v1/analytics/usage?period=7d&group_by=agent');
    const costs = await api<Costs>(owner, '/api/v1/analytics/costs?period=7d&group_by=agent&interval=day');
    const hours = await api<ToolCallHours>(owner, '/api/v1/analytics/tool-calls/hours?period=7d');
    const tools = await api<Usage>(owner, '/api/v1/analytics/usage?period=7d&group_by=tool&kind=tool&interval=day');
    await signIn(page, owner, '/analytics');
    await expect(page.getByRole('heading', { name: 'Analytics', level: 1 })).toBeVisible();

    // Top agents: one bar per agent (at most 10), largest first, in the chart's data table.
    const top = [...agents.rows].sort((a, b) => b.calls - a.calls)[0]!;
    await expect(page.locator('#top-agents .bar-row')).toHaveCount(Math.min(10, agents.rows.length));
    await expect(page.locator('#top-agents .bar-row').first()).toContainText(`${count(top.calls)} calls`);
    await expect(page.locator('#top-agents [role="img"]')).toHaveAttribute('aria-label', /Calls per agent/);
    await expect(page.getByTestId('cost-total')).toHaveText(usd(costs.totals.cost_usd));

    // Tool calls by hour and weekday: every cell of the answer in the heatmap's table, the rest empty.
    await expect(page.getByTestId('tool-calls-total')).toHaveText(`${count(hours.totals.calls)} calls`);
    const week = page.locator('#tool-heatmap table.heatmap').first();
    await expect(week.locator('tbody tr')).toHaveCount(7);
    for (const cell of hours.rows) {
      const row = week.locator('tbody tr').nth(cell.day_of_week - 1);
      await expect(row.locator('th')).toHaveText(WEEKDAYS[cell.day_of_week - 1]!);
      await expect(row.locator('td').nth(cell.hour)).toHaveText(count(cell.calls));
    }
    await expect(week.locator('td', { hasNotText: '—' })).toHaveCount(hours.rows.length);
    await expect(page.locator('#tool-heatmap table.heatmap').nth(1).locator('tbody tr')).toHaveCount(
      new Set(tools.rows.map((r) => r.key ?? 'unattributed')).size,
    );

    // MCP health: the flaky server failed 6 of its 10 calls in a row, so its breaker opened once and closed.
    const server = world().flakyMcpServer;
    const health = await api<McpHealth>(owner, '/api/v1/analytics/mcp-health?period=7d');
    const breakers = await api<BreakerEvents>(owner, '/api/v1/analytics/mcp-breaker-events?period=7d');
    expect(health.servers.find((s) => s.server === server)).toMatchObject({
      calls: 10,
      failures: 6,
      breaker_openings: 1,
    });
    expect(breakers.rows.filter((e) => e.server === server)).toEqual([
      expect.objectContaining({ failures: 6, closed_at: expect.any(String) }),
    ]);
    const servers = page.getByTestId('mcp-servers');
    await expect(servers.locator('tbody tr')).toHaveCount(health.servers.length);
    await expect(servers.locator('tr', { hasText: server }).locator('td')).toHaveText(['10', '60.0 %', '1']);
    await expect(page.getByTestId('breaker-events')).toContainText(`${server} opened`);
    await expect(page.getByTestId('breaker-events')).toContainText('after 6 failed calls; closed');
    await expect(page.locator('#mcp-health [role="img"]')).toHaveAttribute('aria-label', /circuit-breaker events/);

    // Error rates: tool failures as the rollups count them; webhook deliveries: 2 of 3 attempts failed.
    const rates = await api<ErrorRates>(owner, '/api/v1/analytics/error-rates?period=7d&interval=day');
    expect(rates.totals).toMatchObject({ webhook_attempts: 3, webhook_failures: 2, webhook_failure_rate: 0.6667 });
    expect(rates.totals.tool_failures).toBeGreaterThanOrEqual(6);
    await expect(page.getByTestId('tool-error-rate')).toHaveText(percent(rates.totals.tool_error_rate));
    await expect(page.getByTestId('tool-failures')).toHaveText(
      `${count(rates.totals.tool_failures)} of ${count(rates.totals.tool_calls)} calls`,
    );
    await expect(page.getByTestId('webhook-failure-rate')).toHaveText('66.7 %');
    await expect(page.getByTestId('webhook-failures')).toHaveText('2 of 3 attempts');
    const trend = page.locator('#error-rates table');
    await expect(trend.locator('tbody tr')).toHaveCount(rates.rows.length);
    for (const row of rates.rows.filter((r) => r.webhook_attempts > 0)) {
      await expect(trend.locator('tr', { hasText: row.bucket }).locator('td').nth(1)).toHaveText(
        percent(row.webhook_failure_rate),
      );
    }

    await expectAccessible(page);
    await capture(page, 'analytics');

    const monthly = await api<Costs>(owner, '/api/v1/analytics/costs?period=30d&group_by=tenant&interval=day');
    await page.getByRole('button', { name: '30 days' }).click();
    await page.getByRole('button', { name: 'By tenant' }).click();
    await expect(page.getByTestId('cost-total')).toHaveText(usd(monthly.totals.cost_usd));
  });

  test('on a 390 px phone the page fits the screen: MCP servers stack their numbers instead of scrolling sideways', async ({
    page,
  }) => {
    const owner = await token(tenant(1), ['owner']);
    const health = await api<McpHealth>(owner, '/api/v1/analytics/mcp-health?period=7d');
    await page.setViewportSize({ width: 390, height: 844 });
    await signIn(page, owner, '/analytics');
    const servers = page.getByTestId('mcp-servers');
    await expect(servers.locator('tbody tr')).toHaveCount(health.servers.length);
    await chartsDrawn(page, 'light');

    expect(await overflowing(page)).toEqual([]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    // The table's own region does not scroll either: every cell is on the screen, labelled by its column.
    const region = page.getByRole('region', { name: 'MCP servers' });
    const { scrollWidth, clientWidth } = await region.evaluate((el) => ({
      scrollWidth: el.scrollWidth,
      clientWidth: el.clientWidth,
    }));
    expect(scrollWidth).toBeLessThanOrEqual(clientWidth);
    const row = servers.locator('tr', { hasText: world().flakyMcpServer });
    await expect(row.locator('td')).toHaveText(['10', '60.0 %', '1']);
    const labels = await row
      .locator('td')
      .evaluateAll((cells) => cells.map((cell) => getComputedStyle(cell, '::before').content));
    expect(labels).toEqual(['"Calls"', '"Failed"', '"Openings"']);
    for (const cell of await row.locator('th, td').all()) {
      const box = (await cell.boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(390);
    }
    await expectAccessible(page);

    // On a desktop the same table keeps its columns, headed once.
    await page.setViewportSize({ width: 1280, height: 900 });
    await expect(servers.locator('thead th')).toHaveText(['Server', 'Calls', 'Failed', 'Openings']);
    await expect(servers.locator('thead')).toBeVisible();
    expect(
      await row
        .locator('td')
        .first()
        .evaluate((cell) => getComputedStyle(cell, '::before').content),
    ).toBe('none');
  });

  test('each chart exports its rows as CSV', async ({ page }) => {
    const t1 = tenant(1);
    const owner = await token(t1, ['owner']);
    await signIn(page, owner, '/analytics');
    const panels = [
      ['top-agents', 'CSV', '/api/v1/analytics/usage?period=7d&group_by=agent'],
      ['cost-trend', 'CSV', '/api/v1/analytics/costs?period=7d&group_by=agent&interval=day'],
      ['tool-heatmap', 'CSV', '/api/v1/analytics/tool-calls/hours?period=7d'],
      ['tool-heatmap', 'Per tool CSV', '/api/v1/analytics/usage?period=7d&group_by=tool&kind=tool&interval=day'],
      ['mcp-health', 'CSV', '/api/v1/analytics/mcp-health?period=7d'],
      ['mcp-health', 'Breaker events CSV', '/api/v1/analytics/mcp-breaker-events?period=7d'],
      ['error-rates', 'CSV', '/api/v1/analytics/error-rates?period=7d&interval=day'],
    ] as const;
    for (const [id, name, path] of panels) {
      const csv = await csvOf(page, page.locator(`#${id}`).getByRole('button', { name, exact: true }));
      expect(csv).toBe(await apiCsv(owner, path));
      expect(csv.split('\n').length).toBeGreaterThan(1);
    }
  });

  test('a BU user sees neither the Analytics nor the Admin link, and is told so on the page', async ({ page }) => {
    await signIn(page, await token(tenant(1), ['bu']), '/analytics');
    await expect(page.getByText('Your role may not see usage and cost analytics.')).toBeVisible();
    const nav = page.getByRole('navigation', { name: 'Main' });
    await expect(nav.getByRole('link', { name: 'Analytics' })).toHaveCount(0);
    await expect(nav.getByRole('link', { name: 'Admin' })).toHaveCount(0);
    await page.goto('/admin');
    await expect(page.getByRole('alert')).toContainText('Could not load the Admin Overview');
    await expect(page.getByTestId('spend-total')).toHaveCount(0);
  });
});
