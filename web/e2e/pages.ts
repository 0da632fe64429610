import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import { expect, type Page } from '@playwright/test';

/** Signs in through the sign-in form with an API key or token, as a person would, and waits for the app. */
export async function signIn(page: Page, credential: string, path = '/'): Promise<void> {
  await page.goto(`/sign-in?next=${encodeURIComponent(path)}`);
  await page.getByLabel('API key or token').fill(credential);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
}

/** axe-core on the page as it is: no serious or critical violation (docs/console.md "Tests"). */
export async function expectAccessible(page: Page): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(
    bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`),
  ).toEqual([]);
}

/**
 * Waits until every chart on the page is drawn in the current colour scheme (components/echart.tsx marks its
 * canvas `data-drawn="light|dark"` when ECharts has finished), so a screenshot shows the charts.
 */
export async function chartsDrawn(page: Page, scheme: 'light' | 'dark'): Promise<void> {
  await expect
    .poll(() =>
      page.evaluate(
        (drawn) =>
          [...document.querySelectorAll('.chart-box')].every((box) =>
            box.querySelector(`.chart-canvas[data-drawn="${drawn}"]`),
          ),
        scheme,
      ),
    )
    .toBe(true);
}

const OUT = join(import.meta.dirname, '..', '..', 'docs', 'console');
const VIEWPORTS = [
  { name: 'desktop', width: 1280, height: 900 },
  { name: 'phone', width: 390, height: 844 },
] as const;

/**
 * Screenshots of a page, desktop and 390 px phone, light and dark, into docs/console/ (shown in docs/console.md and
 * the README): axe in both colour schemes, and nothing wider than the screen.
 */
export async function capture(page: Page, name: string): Promise<void> {
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

/** Elements reaching past the right edge of the screen (the page would scroll sideways). */
export function overflowing(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    return [...document.querySelectorAll('body *')]
      .filter((element) => {
        const box = element.getBoundingClientRect();
        if (box.width === 0 || box.right <= width + 1) return false;
        // Inside a scrolling region (wide tables on a phone) is fine: the region scrolls, not the page.
        for (let parent = element.parentElement; parent; parent = parent.parentElement) {
          if (getComputedStyle(parent).overflowX !== 'visible') return parent.getBoundingClientRect().right > width + 1;
        }
        return true;
      })
      .map(
        (element) =>
          `${element.tagName.toLowerCase()}.${element.className} (${Math.round(element.getBoundingClientRect().right)} px)`,
      );
  });
}
