/**
 * The console's page paths (docs/console.md "Pages and API on one port"). Add a page here and in
 * web/src/routes.tsx. A GET on one of these paths from a browser navigation (Accept: text/html, no
 * credential) answers the console's index.html; the same path with a credential, or asked for JSON, stays
 * an API route, so every API path keeps its behaviour.
 */
export const CONSOLE_PAGES: readonly RegExp[] = [
  /^\/$/,
  /^\/sign-in$/,
  /^\/sign-in\/link$/,
  /^\/auth\/callback$/,
  /^\/runs\/[^/]+$/,
  /^\/admin$/,
  /^\/admin\/prices$/,
  /^\/tenants\/[^/]+$/,
  /^\/tenants\/[^/]+\/prompt-audit$/,
  /^\/projects\/[^/]+$/,
  /^\/analytics$/,
];

export interface PageRequest {
  method: string;
  path: string;
  accept: string | undefined;
  hasCredential: boolean;
}

/** Whether a request is a browser asking for a console page rather than a call of the API. */
export function isPageRequest(request: PageRequest): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  if (request.hasCredential) return false;
  if (!request.accept || !/\btext\/html\b/i.test(request.accept)) return false;
  return CONSOLE_PAGES.some((page) => page.test(request.path));
}
