import { generateKeyPairSync } from 'node:crypto';
import type { Server } from 'node:http';
import Provider from 'oidc-provider';

/**
 * A real OpenID Connect provider for the sign-in tests (the `oidc-provider` package with its development
 * login and consent pages): a public client for the console (Authorization Code + PKCE), access tokens as
 * RS256 JWTs for the query API's audience, carrying the tenant and roles the API reads.
 */
export const OIDC_CLIENT_ID = 'agentmeter-console';
export const OIDC_SCOPE = 'openid profile api';
export const API_RESOURCE = 'urn:agentmeter:api';

export async function startOidcProvider(options: {
  port: number;
  consoleUrl: string;
  tenantId: string;
  roles: string[];
}): Promise<{ issuer: string; stop: () => Promise<void> }> {
  const issuer = `http://127.0.0.1:${options.port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'console-e2e', alg: 'RS256', use: 'sig' };
  const consoleOrigin = new URL(options.consoleUrl).origin;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: OIDC_CLIENT_ID,
        redirect_uris: [`${options.consoleUrl}/auth/callback`],
        post_logout_redirect_uris: [`${options.consoleUrl}/sign-in`],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: ['console-e2e-cookie-key-0123456789'] },
    pkce: { required: () => true },
    ttl: { AccessToken: 600, IdToken: 600, Interaction: 600, Session: 600, Grant: 600, AuthorizationCode: 60 },
    scopes: ['openid', 'profile', 'api'],
    clientBasedCORS: (_ctx, origin) => origin === consoleOrigin,
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    extraTokenClaims: () => ({ tenant_id: options.tenantId, roles: options.roles }),
    features: {
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'api',
          audience: 'agentmeter-api',
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
  });
  const server: Server = provider.listen(options.port);
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return {
    issuer,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
