import { isPageRequest, type PageRequest } from './pages';

const browser: PageRequest = {
  method: 'GET',
  path: '/runs/run-1',
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  hasCredential: false,
};

describe('isPageRequest: pages and API on one port (docs/console.md)', () => {
  it.each([
    ['/', true],
    ['/sign-in', true],
    ['/sign-in/link', true],
    ['/auth/callback', true],
    ['/runs/run-1', true],
    ['/admin', true],
    ['/tenants/t-1', true],
    ['/projects/p-1', true],
    ['/analytics', true],
    ['/admin/prices', true],
    ['/tenants/t-1/prompt-audit', true],
    ['/runs', false],
    ['/runs/run-1/metrics', false],
    ['/admin/overview', false],
    ['/tenants/t-1/overview', false],
    ['/admin/reprices', false],
    ['/tenants/t-1/prompt-audit/x', false],
    ['/docs', false],
    ['/health/ready', false],
    ['/whoami', false],
  ])('a browser navigation to %s is a page: %s', (path, page) => {
    expect(isPageRequest({ ...browser, path })).toBe(page);
  });

  it('is the API when the request carries a credential', () => {
    expect(isPageRequest({ ...browser, hasCredential: true })).toBe(false);
  });

  it.each([undefined, '*/*', 'application/json', 'text/event-stream'])('is the API for Accept %s', (accept) => {
    expect(isPageRequest({ ...browser, accept })).toBe(false);
  });

  it.each(['POST', 'PUT', 'DELETE', 'PATCH'])('is the API for %s', (method) => {
    expect(isPageRequest({ ...browser, method })).toBe(false);
  });

  it('answers HEAD like GET', () => {
    expect(isPageRequest({ ...browser, method: 'HEAD' })).toBe(true);
  });
});
