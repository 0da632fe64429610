import { createRequire } from 'node:module';
import { join } from 'node:path';

/**
 * Page loads in real Chromium for the console benchmark (bench/console.bench.ts), through the console's own
 * Playwright (web/node_modules: bench/ has no browser dependency of its own) and Debian's Chromium.
 */
type PlaywrightCore = typeof import('../../web/node_modules/playwright-core');
type Browser = Awaited<ReturnType<PlaywrightCore['chromium']['launch']>>;
type BrowserContext = Awaited<ReturnType<Browser['newContext']>>;

export type { Browser, BrowserContext };

export async function launchChromium(root: string): Promise<Browser> {
  const { chromium } = createRequire(join(root, 'web', 'package.json'))('playwright-core') as PlaywrightCore;
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    // The flags of the console's browser tests (web/e2e/playwright.config.ts).
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** One page load: navigation start to usable, and what it fetched on the way. */
export interface LoadSample {
  /** Navigation start → every ready selector in the DOM and one frame drawn after it. */
  usableMs: number;
  /** JavaScript bytes over the network (compressed, headers included) until usable, and until the network was quiet. */
  jsBytesAtUsable: number;
  jsBytes: number;
  /** API calls (fetch) until usable: the slowest one and its end, relative to navigation start. */
  slowestApi: { path: string; ms: number; endMs: number } | null;
  apiCalls: number;
  /** Every request that ended before the page was usable, in start order (the network tab's waterfall). */
  waterfall: Array<{ path: string; startMs: number; endMs: number }>;
}

/**
 * Runs in the page before any of its scripts (an init script, plain JavaScript: bench/ compiles without DOM
 * types): signs in as the console does (its session in sessionStorage), then waits for every ready selector
 * and for the next frame after it: the content is in the DOM, drawn, and the main thread is free for input.
 */
function probeScript(selectors: string[], session: string): string {
  return `(() => {
    sessionStorage.setItem('agentmeter.session', ${JSON.stringify(session)});
    const selectors = ${JSON.stringify(selectors)};
    const ready = () => selectors.every((selector) => document.querySelector(selector));
    const observer = new MutationObserver(() => {
      if (!ready()) return;
      observer.disconnect();
      requestAnimationFrame(() => setTimeout(() => (window.__usableAt = performance.now()), 0));
    });
    observer.observe(document, { childList: true, subtree: true, attributes: true });
  })();`;
}

interface Resource {
  path: string;
  initiator: string;
  transferSize: number;
  startMs: number;
  endMs: number;
}

/**
 * Runs in the page: what it fetched (Resource Timing, relative to navigation start). A function, not a
 * string, so the console's Content Security Policy (no eval) allows it; typed without DOM types.
 */
function readResources(): Resource[] {
  type Timing = { name: string; initiatorType: string; transferSize: number; startTime: number; responseEnd: number };
  return (performance.getEntriesByType('resource') as unknown as Timing[]).map((e) => {
    const url = new URL(e.name);
    return {
      path: url.pathname + url.search,
      initiator: e.initiatorType,
      transferSize: e.transferSize,
      startMs: e.startTime,
      endMs: e.responseEnd,
    };
  });
}

/** Runs in the page: when it became usable (set by the probe), or undefined. */
function usableAt(): number | undefined {
  return (globalThis as { __usableAt?: number }).__usableAt;
}

/** A context (empty HTTP cache) that signs in as the credential and reports when the selectors are ready. */
export async function newProbedContext(
  browser: Browser,
  credential: string,
  expiresAt: number,
  selectors: string[],
): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await context.addInitScript({
    content: probeScript(selectors, JSON.stringify({ credential, kind: 'token', expiresAt })),
  });
  return context;
}

/** Loads `url` in a new page of the context and measures it (the context's cache decides cold or warm). */
export async function measureLoad(context: BrowserContext, url: string): Promise<LoadSample> {
  const page = await context.newPage();
  try {
    await page.goto(url, { waitUntil: 'commit' });
    await page.waitForFunction(usableAt, undefined, { timeout: 120_000, polling: 50 });
    const usableMs = (await page.evaluate(usableAt))!;
    const atUsable = await page.evaluate(readResources);
    await page.waitForLoadState('networkidle');
    const settled = await page.evaluate(readResources);
    const js = (resources: Resource[]) =>
      resources.filter((r) => r.path.split('?', 1)[0]!.endsWith('.js')).reduce((n, r) => n + r.transferSize, 0);
    const api = atUsable
      .filter((r) => r.initiator === 'fetch' && r.endMs <= usableMs)
      .map((r) => ({ path: r.path, ms: r.endMs - r.startMs, endMs: r.endMs }));
    return {
      usableMs,
      jsBytesAtUsable: js(atUsable.filter((r) => r.endMs <= usableMs)),
      jsBytes: js(settled),
      slowestApi: api.sort((a, b) => b.ms - a.ms)[0] ?? null,
      apiCalls: api.length,
      waterfall: atUsable
        .filter((r) => r.endMs <= usableMs)
        .sort((a, b) => a.startMs - b.startMs)
        .map((r) => ({ path: r.path, startMs: r.startMs, endMs: r.endMs })),
    };
  } finally {
    await page.close();
  }
}
