import { UserManager, WebStorageStateStore } from 'oidc-client-ts';

/**
 * OpenID Connect sign-in with oidc-client-ts: Authorization Code + PKCE (the library's default), the
 * redirect back to /auth/callback, state kept in sessionStorage. The access token becomes the session's
 * bearer credential; the query service verifies it against the issuer's JWKS (docs/console.md).
 */
export interface OidcSettings {
  issuer: string;
  client_id: string;
  scope: string;
}

const SETTINGS = 'agentmeter.oidc';

function manager(settings: OidcSettings): UserManager {
  return new UserManager({
    authority: settings.issuer,
    client_id: settings.client_id,
    scope: settings.scope,
    redirect_uri: `${window.location.origin}/auth/callback`,
    post_logout_redirect_uri: `${window.location.origin}/sign-in`,
    response_type: 'code',
    userStore: new WebStorageStateStore({ store: window.sessionStorage }),
    stateStore: new WebStorageStateStore({ store: window.sessionStorage }),
  });
}

export async function startOidcSignIn(settings: OidcSettings, next: string): Promise<void> {
  sessionStorage.setItem(SETTINGS, JSON.stringify(settings));
  await manager(settings).signinRedirect({ state: { next } });
}

/** Completes the redirect: the access token, its expiry and where to go next. */
export async function completeOidcSignIn(): Promise<{ accessToken: string; expiresAt: number | null; next: string }> {
  const settings = JSON.parse(sessionStorage.getItem(SETTINGS) ?? 'null') as OidcSettings | null;
  if (!settings) throw new Error('No sign-in was started in this tab.');
  const user = await manager(settings).signinRedirectCallback();
  const next = (user.state as { next?: string } | undefined)?.next ?? '/';
  return {
    accessToken: user.access_token,
    expiresAt: user.expires_at ? user.expires_at * 1000 : null,
    next: next.startsWith('/') ? next : '/',
  };
}
