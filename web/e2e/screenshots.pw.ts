import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, type Page, test } from '@playwright/test';
import { expectAccessible, overflowing, signIn } from './pages';
import { token, world } from './world';

/**
 * Screenshots of every console page, desktop and 390 px phone, light and dark, into docs/console/ (shown
 * in docs/console.md and the README). Each page is also checked with axe in both colour schemes.
 */
const OUT = join(import.meta.dirname, '..', '..', 'docs', 'console');
const VIEWPORTS = [
  { name: 'desktop', width: 1280, height: 900 },
  { name: 'phone', width: 390, height: 844 },
] as const;

async function capture(page: Page, name: string): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme, reducedMotion: 'reduce' });
    await expectAccessible(page);
    for (const viewport of VIEWPORTS) {
      if (scheme === 'dark' && viewport.name === 'phone') continue;
      await page.setViewportSize({ width: viewport.width, height: viewport.height });
      expect(await overflowing(page), `nothing wider than the ${viewport.name} screen`).toEqual([]);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(viewport.width);
      const suffix = scheme === 'dark' ? `${viewport.name}-dark` : viewport.name;
      await page.screenshot({ path: join(OUT, `${name}-${suffix}.png`), fullPage: true, animations: 'disabled' });
    }
  }
  await page.setViewportSize({ width: VIEWPORTS[0].width, height: VIEWPORTS[0].height });
}

test.describe('screenshots of every page', () => {
  test('sign-in', async ({ page }) => {
    await page.goto('/sign-in');
    await expect(page.getByRole('heading', { name: 'Sign in to AgentMeter' })).toBeVisible();
    await capture(page, 'sign-in');
  });

  test('runs', async ({ page }) => {
    const run = world().runs.succeeded;
    await signIn(page, await token(run.tenant_id, ['owner', 'op']));
    await expect(page.getByRole('link', { name: run.run_id })).toBeVisible();
    await capture(page, 'runs');
  });

  test('run detail (running, OP, token usage open)', async ({ page }) => {
    const run = world().runs.live[2]!;
    await signIn(page, await token(run.tenant_id, ['op']), `/runs/${run.run_id}`);
    await page.getByRole('button', { name: 'Show token usage' }).click();
    await expect(page.getByTestId('elapsed-implement').locator('[data-live="true"]')).toBeVisible();
    await expect(page.getByTestId('timeline')).toBeVisible();
    await capture(page, 'run-detail-running');
  });

  test('run detail (stopped by a cap, Owner)', async ({ page }) => {
    const run = world().runs.capped;
    await signIn(page, await token(run.tenant_id, ['owner']), `/runs/${run.run_id}`);
    await expect(page.getByTestId('why-stopped')).toBeVisible();
    await page.getByRole('button', { name: 'Show token usage' }).click();
    await capture(page, 'run-detail-capped');
  });

  test('run detail (succeeded, with MCP cache, BU)', async ({ page }) => {
    const run = world().runs.withMcp;
    await signIn(page, await token(run.tenant_id, ['bu']), `/runs/${run.run_id}`);
    await expect(page.getByTestId('mcp-overall')).toBeVisible();
    await capture(page, 'run-detail-bu');
  });
});
