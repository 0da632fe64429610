import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { expectAccessible, signIn } from './pages';
import { api, token, world } from './world';

const ROOT = join(import.meta.dirname, '..', '..');

/** A one-click link as `make up` prints it (the compiled tool, with the query service's secret). */
function signInLink(roles: string, tenant: string, ttlSeconds = 900): string {
  const tool = join(ROOT, 'dist', 'query', 'services', 'query', 'src', 'console', 'sign-in-link.js');
  return execFileSync(process.execPath, [tool, world().queryUrl, roles, tenant, 'demo-user', String(ttlSeconds)], {
    env: { PATH: process.env.PATH ?? '', AUTH_JWT_SECRET: world().secret },
    encoding: 'utf8',
  }).trim();
}

test.describe('sign-in and sign-out', () => {
  test('the sign-in page is accessible, and a page asked for without a session goes to it', async ({ page }) => {
    const run = world().runs.succeeded;
    await page.goto(`/runs/${run.run_id}`);
    await expect(page).toHaveURL(/\/sign-in\?next=/);
    await expect(page.getByRole('heading', { name: 'Sign in to AgentMeter' })).toBeVisible();
    await expectAccessible(page);
  });

  test('with an API key: sign in, see the runs, sign out', async ({ page }) => {
    const tenant = world().runs.succeeded.tenant_id;
    const owner = await token(tenant, ['owner']);
    const { api_key } = await api<{ api_key: string }>(owner, '/api-keys', {
      method: 'POST',
      body: JSON.stringify({ name: 'console e2e', role: 'bu' }),
    });
    await signIn(page, api_key);
    await expect(page.getByTestId('who')).toContainText('bu');
    await expect(page.getByRole('link', { name: world().runs.succeeded.run_id })).toBeVisible();
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(/\/sign-in$/);
    await page.goto('/');
    await expect(page).toHaveURL(/\/sign-in/);
  });

  test('a refused key stays on the sign-in page with a message', async ({ page }) => {
    await page.goto('/sign-in');
    await page.getByLabel('API key or token').fill('amk_not-a-real-key');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(page.getByRole('alert')).toHaveText('This key or token was not accepted.');
    await expect(page.getByRole('button', { name: 'Sign out' })).toHaveCount(0);
  });

  test('an expired session returns to sign-in', async ({ page }) => {
    const run = world().runs.succeeded;
    await signIn(page, await token(run.tenant_id, ['op'], Math.floor(Date.now() / 1000) + 5), `/runs/${run.run_id}`);
    await expect(page).toHaveURL(/\/sign-in\?reason=expired/, { timeout: 20_000 });
    await expect(page.getByRole('status')).toHaveText('Your session has ended. Sign in again.');
  });

  test('a one-click link signs in once; the same link again is refused', async ({ page, browser }) => {
    const tenant = world().runs.succeeded.tenant_id;
    const link = signInLink('owner,op', tenant);
    expect(link).toMatch(/\/sign-in\/link#code=/);
    await page.goto(link);
    await expect(page.getByTestId('who')).toContainText('demo-user');
    await expect(page).toHaveURL(/\/$/);
    const other = await browser.newPage({ baseURL: world().queryUrl });
    await other.goto(link);
    await expect(other.getByRole('alert')).toContainText('invalid, has expired or was already used');
    await other.close();
  });
});

test.describe('sign-in with OpenID Connect', () => {
  test('Authorization Code + PKCE against a real provider, then sign out', async ({ page }) => {
    const { consoleUrl, issuer } = world().oidc;
    const run = world().runs.succeeded;
    await page.goto(`${consoleUrl}/runs/${run.run_id}`);
    await expect(page).toHaveURL(/\/sign-in\?next=/);
    await expectAccessible(page);
    const authorizeRequest = page.waitForRequest((request) => request.url().startsWith(`${issuer}/auth?`));
    await page.getByRole('button', { name: `Sign in with ${new URL(issuer).host}` }).click();
    const authorize = new URL((await authorizeRequest).url());
    expect(authorize.searchParams.get('response_type')).toBe('code');
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);

    // The provider's own login and consent pages.
    await expect(page).toHaveURL(new RegExp(`^${issuer}/`));
    await page.locator('input[name="login"]').fill('oidc-owner');
    await page.locator('input[name="password"]').fill('any');
    await page.locator('button[type="submit"]').click();
    await page.locator('button[type="submit"]', { hasText: /continue/i }).click();

    await expect(page).toHaveURL(`${consoleUrl}/runs/${run.run_id}`);
    await expect(page.getByTestId('who')).toContainText('oidc-owner');
    await expect(page.getByTestId('chip-run')).toContainText(run.run_id);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(`${consoleUrl}/sign-in`);
    await page.goto(`${consoleUrl}/`);
    await expect(page).toHaveURL(/\/sign-in/);
  });
});
