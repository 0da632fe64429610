import { expect, test } from '@playwright/test';
import { expectAccessible, signIn } from './pages';
import { duration } from '../src/format';
import { api, publish, runEvents, token, world } from './world';

interface Stage {
  stage: string;
  status: string;
  attempts: number;
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  total_tokens?: number | null;
  elapsed_ms: number | null;
  longest: boolean;
}
interface Metrics {
  totals: { total_tokens?: number; prompt_tokens?: number; completion_tokens?: number; cost_usd: string };
  stages: Stage[];
  mcp_cache: {
    tree: { hits: number; misses: number };
    blob: { hits: number; misses: number };
    overall_hit_pct: number;
  } | null;
}

const n = (value: number) => new Intl.NumberFormat('en-US').format(value);

test.describe('run detail /runs/{run_id}', () => {
  test('token usage panel: collapsed by default, "Show token usage" shows the total and every stage', async ({
    page,
  }) => {
    const run = world().runs.succeeded;
    const bu = await token(run.tenant_id, ['bu']);
    const metrics = await api<Metrics>(bu, `/runs/${run.run_id}/metrics`);
    await signIn(page, bu, `/runs/${run.run_id}`);
    const toggle = page.getByRole('button', { name: 'Show token usage' });
    await expect(toggle).toHaveAttribute('aria-expanded', 'false');
    await expect(page.getByTestId('token-usage-body')).toBeHidden();
    await toggle.click();
    await expect(page.getByRole('button', { name: 'Hide token usage' })).toHaveAttribute('aria-expanded', 'true');
    await expect(page.getByTestId('total-tokens')).toContainText(`${n(metrics.totals.total_tokens!)} tokens`);
    for (const stage of metrics.stages) {
      const row = page.getByTestId(`tokens-${stage.stage}`);
      await expect(row.locator('td')).toHaveText([
        `${n(stage.prompt_tokens!)} tokens`,
        `${n(stage.completion_tokens!)} tokens`,
        `${n(stage.total_tokens!)} tokens`,
      ]);
    }
    await expectAccessible(page);
  });
});

test.describe('run detail: running stages', () => {
  test('a running stage shows "—" and "Stage in progress — token usage will appear when complete"', async ({
    page,
  }) => {
    const run = world().runs.live[0]!;
    await signIn(page, await token(run.tenant_id, ['bu']), `/runs/${run.run_id}`);
    await page.getByRole('button', { name: 'Show token usage' }).click();
    const row = page.getByTestId('tokens-implement');
    await expect(row.locator('td')).toHaveText(['—', '—', '—']);
    await expect(row).toContainText('Stage in progress — token usage will appear when complete');
    await expect(page.getByTestId('tokens-plan').locator('td').first()).toHaveText('3,000 tokens');
  });

  test("a running stage's elapsed time counts up every second", async ({ page }) => {
    const run = world().runs.live[0]!;
    await signIn(page, await token(run.tenant_id, ['bu']), `/runs/${run.run_id}`);
    const counter = page.getByTestId('elapsed-implement').locator('[data-live="true"]');
    await expect(counter).toBeVisible();
    const first = Number(await counter.getAttribute('data-seconds'));
    await expect.poll(async () => Number(await counter.getAttribute('data-seconds'))).toBeGreaterThan(first);
    await expect.poll(async () => Number(await counter.getAttribute('data-seconds'))).toBeGreaterThan(first + 1);
  });

  test('when the stage ends, its final elapsed time replaces the counter, without a reload', async ({ page }) => {
    const run = world().runs.live[1]!;
    const bu = await token(run.tenant_id, ['bu']);
    await signIn(page, bu, `/runs/${run.run_id}`);
    await expect(page.getByTestId('elapsed-implement').locator('[data-live="true"]')).toBeVisible();
    await expect(page.getByTestId('last-synced')).toContainText('Live');
    await page.evaluate(() => ((window as unknown as { sameDocument: boolean }).sameDocument = true));

    const at = runEvents(run);
    const stage = { phase: 'implement', role: 'implementer', attempt: 1 };
    await publish([
      at('llm_call', 2, {
        ...stage,
        model: 'gpt-4.1-mini',
        provider: 'openai',
        prompt_tokens: 1_200,
        completion_tokens: 300,
        latency_ms: 900,
      }),
      at('phase_advanced', 1, { ...stage, next_phase: 'validate' }),
    ]);

    const cell = page.getByTestId('elapsed-implement');
    await expect(cell.locator('[data-live="true"]')).toHaveCount(0, { timeout: 30_000 });
    const metrics = await api<Metrics>(bu, `/runs/${run.run_id}/metrics`);
    const implement = metrics.stages.find((s) => s.stage === 'implement')!;
    expect(implement.status).toBe('passed');
    await expect(cell).toHaveText(duration(implement.elapsed_ms));
    await page.getByRole('button', { name: 'Show token usage' }).click();
    await expect(page.getByTestId('tokens-implement').locator('td')).toHaveText([
      '1,200 tokens',
      '300 tokens',
      '1,500 tokens',
    ]);
    expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
  });
});

test.describe('run detail: latency, cache, links', () => {
  test('latency panel: elapsed time and attempts per stage, the longest highlighted', async ({ page }) => {
    const run = world().runs.succeeded;
    const bu = await token(run.tenant_id, ['bu']);
    const metrics = await api<Metrics>(bu, `/runs/${run.run_id}/metrics`);
    await signIn(page, bu, `/runs/${run.run_id}`);
    for (const stage of metrics.stages) {
      const row = page.getByTestId(`latency-${stage.stage}`);
      await expect(row.getByTestId(`elapsed-${stage.stage}`)).toHaveText(duration(stage.elapsed_ms));
      await expect(row.locator('td').nth(2)).toHaveText(String(stage.attempts));
    }
    const longest = metrics.stages.filter((s) => s.longest);
    expect(longest).toHaveLength(1);
    await expect(page.locator('tr[data-longest="true"]')).toHaveCount(1);
    await expect(page.getByTestId(`latency-${longest[0]!.stage}`)).toHaveClass(/highlight/);
    await expect(page.getByTestId(`latency-${longest[0]!.stage}`)).toContainText('Longest');
  });

  test('MCP cache panel: tree and blob hits, misses and ratio, and the overall percentage', async ({ page }) => {
    const run = world().runs.withMcp;
    const bu = await token(run.tenant_id, ['bu']);
    const { mcp_cache: cache } = await api<Metrics>(bu, `/runs/${run.run_id}/metrics`);
    await signIn(page, bu, `/runs/${run.run_id}`);
    for (const [space, counts] of [
      ['tree', cache!.tree],
      ['blob', cache!.blob],
    ] as const) {
      const ratio =
        counts.hits + counts.misses === 0
          ? '—'
          : `${((counts.hits / (counts.hits + counts.misses)) * 100).toFixed(1)} %`;
      await expect(page.getByTestId(`mcp-${space}`).locator('td')).toHaveText([
        `${counts.hits} hits`,
        `${counts.misses} misses`,
        ratio,
      ]);
    }
    await expect(page.getByTestId('mcp-overall')).toContainText(`${cache!.overall_hit_pct.toFixed(1)} %`);
    await expect(page.getByTestId('no-mcp')).toHaveCount(0);
  });

  test('a run without MCP calls says "No MCP calls in this run", not zeros', async ({ page }) => {
    const run = world().runs.withoutMcp;
    await signIn(page, await token(run.tenant_id, ['bu']), `/runs/${run.run_id}`);
    await expect(page.getByTestId('no-mcp')).toHaveText('No MCP calls in this run');
    await expect(page.getByTestId('mcp-overall')).toHaveCount(0);
  });

  test('OP sees "Open in Grafana" (new tab) and a "View trace" link per stage', async ({ page }) => {
    const run = world().runs.succeeded;
    await signIn(page, await token(run.tenant_id, ['op']), `/runs/${run.run_id}`);
    const grafana = page.getByRole('link', { name: /Open in Grafana/ });
    await expect(grafana).toHaveAttribute('target', '_blank');
    await expect(grafana).toHaveAttribute('href', new RegExp(`^https://grafana\\.example\\.test/.*${run.run_id}`));
    const traces = page.getByRole('link', { name: /View trace/ });
    const stages = await page.locator('tr[data-testid^="latency-"]').count();
    await expect(traces).toHaveCount(stages);
    for (const link of await traces.all()) {
      // Grafana Explore on the tempo datasource with the trace id as its query (docs/query.md "Links").
      await expect(link).toHaveAttribute('href', /^https:\/\/grafana\.example\.test\/explore\?.*%22[0-9a-f]{32}%22/);
      await expect(link).toHaveAttribute('target', '_blank');
    }
    await expectAccessible(page);
  });

  for (const role of ['bu', 'auditor']) {
    test(`Grafana and Tempo links are absent from the DOM for ${role}`, async ({ page }) => {
      const run = world().runs.succeeded;
      await signIn(page, await token(run.tenant_id, [role]), `/runs/${run.run_id}`);
      await expect(page.getByTestId(`latency-plan`)).toBeVisible();
      await expect(page.getByText('Open in Grafana')).toHaveCount(0);
      await expect(page.getByText('View trace')).toHaveCount(0);
      await expect(page.locator('a[href*="grafana"], a[href*="tempo"]')).toHaveCount(0);
      expect(await page.content()).not.toMatch(/grafana\.example|tempo\.example/);
    });
  }
});

test.describe('run detail: outcome, caps and timeline', () => {
  test('a capped run shows its cost against its caps and why it stopped', async ({ page }) => {
    const run = world().runs.capped;
    await signIn(page, await token(run.tenant_id, ['owner']), `/runs/${run.run_id}`);
    await expect(page.getByTestId('run-cost')).toContainText('$0.10');
    const cost = page.locator('#cost');
    await expect(cost).toContainText('Cost cap');
    await expect(cost).toContainText('100.0 % used');
    await expect(cost).toContainText('1,000,000 tokens (42,500 used)');
    const why = page.getByTestId('why-stopped');
    await expect(why).toContainText('Its cost cap was reached');
    await expect(why).toContainText('$0.10 of $0.10');
    await expect(why).toContainText('stopped by cost-cap: run cost cap reached');
    // Its stage never reported an end: no live counter in a finished run.
    await expect(page.getByTestId('elapsed-plan')).toHaveText('—');
    await expect(page.getByTestId('timeline')).toContainText('Cap reached');
    await expect(page.getByTestId('timeline')).toContainText('Run failed');
    await expect(page.getByTestId('chip-run')).toContainText(run.run_id);
    await expect(page.getByText('staging')).toBeVisible();
    await expectAccessible(page);
  });

  test('a run the caller may not see answers a designed error, not a blank page', async ({ page }) => {
    const run = world().runs.succeeded;
    await signIn(page, await token('another-tenant', ['bu']), `/runs/${run.run_id}`);
    await expect(page.getByRole('alert')).toContainText('Could not load this run');
    await expect(page.getByRole('alert')).toContainText('it is not one your role may see');
  });
});
