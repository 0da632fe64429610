import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { createTestDatabase, startService, type RunningService, type TestDatabase } from '@agentmeter/testing';
import { SECRET, token } from './query.fixture';

const LINK_TOOL = join(
  __dirname,
  '..',
  '..',
  '..',
  'dist',
  'query',
  'services',
  'query',
  'src',
  'console',
  'sign-in-link.js',
);
const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

/**
 * The console on the query service's port (docs/console.md "Pages and API on one port"): a browser's
 * navigation to a page path gets index.html, every API route answers as before, assets are cached for good,
 * and a one-click sign-in link opens one session only. The pages come from a stand-in build (CONSOLE_DIR).
 */
describe('query serves the console beside its API', () => {
  let database: TestDatabase;
  let query: RunningService;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agentmeter-console-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(
      join(dir, 'index.html'),
      '<!doctype html><title>console</title><script src="/assets/app-1.js"></script>',
    );
    writeFileSync(join(dir, 'assets', 'app-1.js'), 'console.log("console");');
    // The compressed copies the console's build writes beside each script (web/scripts/precompress.mjs).
    writeFileSync(join(dir, 'assets', 'app-1.js.br'), brotliCompressSync('console.log("console");'));
    writeFileSync(join(dir, 'assets', 'app-1.js.gz'), gzipSync('console.log("console");'));
    database = await createTestDatabase();
    query = await startService('query', { DATABASE_URL: database.url, AUTH_JWT_SECRET: SECRET, CONSOLE_DIR: dir });
  });

  afterAll(async () => {
    await query?.stop();
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${query.url}${path}`, { headers });

  it.each(['/', '/sign-in', '/runs/run-1', '/admin', '/tenants/t-1', '/projects/p-1', '/analytics'])(
    'answers index.html to a browser navigating to %s',
    async (path) => {
      const response = await get(path, { accept: HTML });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/html/);
      expect(response.headers.get('cache-control')).toBe('no-cache');
      expect(await response.text()).toContain('<title>console</title>');
    },
  );

  it('keeps every API answer: with a credential, asking for JSON, or on an API path', async () => {
    const bearer = await token('tenant-1', ['op']);
    const withCredential = await get('/runs/run-1', { accept: HTML, authorization: `Bearer ${bearer}` });
    expect(withCredential.status).toBe(404);
    expect(withCredential.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const json = await get('/runs/run-1/metrics', { accept: HTML });
    expect(json.status).toBe(401);
    const listed = await get('/runs', { accept: 'application/json', authorization: `Bearer ${bearer}` });
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { items: unknown[] }).items).toEqual([]);
    const docs = await get('/docs-json');
    expect(docs.status).toBe(200);
  });

  it('serves the hashed assets cached for good, and a missing asset as 404', async () => {
    const asset = await get('/assets/app-1.js');
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await asset.text()).toContain('console.log');
    expect((await get('/assets/app-2.js')).status).toBe(404);
  });

  it.each(['br', 'gzip'])("sends the build's %s copy of an asset to a browser that accepts it", async (encoding) => {
    const asset = await get('/assets/app-1.js', { 'accept-encoding': encoding });
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-encoding')).toBe(encoding);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await asset.text()).toBe('console.log("console");');
    const plain = await get('/assets/app-1.js', { 'accept-encoding': 'identity' });
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(await plain.text()).toBe('console.log("console");');
  });

  it('tells the console its sign-in options before anyone signs in', async () => {
    const response = await get('/console/settings');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ oidc: null, sign_in_links: true, session_minutes: 60 });
  });

  it('exchanges a one-click link code once for a session token the API accepts', async () => {
    const link = execFileSync(process.execPath, [LINK_TOOL, query.url, 'owner,op', 'tenant-1', 'demo-user'], {
      env: { PATH: process.env.PATH ?? '', AUTH_JWT_SECRET: SECRET },
      encoding: 'utf8',
    }).trim();
    expect(link.startsWith(`${query.url}/sign-in/link#code=`)).toBe(true);
    const code = new URL(link).hash.slice('#code='.length);
    const exchange = () =>
      fetch(`${query.url}/console/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code }),
      });
    const first = await exchange();
    expect(first.status).toBe(201);
    const session = (await first.json()) as { token: string; expires_at: string };
    const whoami = await get('/whoami', { authorization: `Bearer ${session.token}` });
    expect(await whoami.json()).toMatchObject({ subject: 'demo-user', tenant_id: 'tenant-1', roles: ['owner', 'op'] });
    expect((await exchange()).status).toBe(401);
    expect(query.output()).not.toContain(code);
  });

  it('refuses a link code that is forged or expired', async () => {
    const post = (code: string) =>
      fetch(`${query.url}/console/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code }),
      });
    expect((await post('not-a-code')).status).toBe(401);
    const bearer = await token('tenant-1', ['admin']);
    expect((await post(bearer)).status).toBe(401);
    const expired = execFileSync(process.execPath, [LINK_TOOL, query.url, 'op', 'tenant-1', 'demo-user', '-1'], {
      env: { PATH: process.env.PATH ?? '', AUTH_JWT_SECRET: SECRET },
      encoding: 'utf8',
    }).trim();
    expect((await post(new URL(expired).hash.slice('#code='.length))).status).toBe(401);
  });
});
