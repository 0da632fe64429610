import { loadConfig } from '../config';
import { mintLinkCode } from './sign-in-links';

/**
 * Prints a one-click console sign-in link (docs/console.md "Sign-in"), as `make up` does:
 * `node dist/query/services/query/src/console/sign-in-link.js <console url> <roles> <tenant> [subject]`.
 * The code rides in the URL fragment (never sent to a server, never in a log), expires in
 * 15 minutes (a fifth argument: seconds) and opens one session only.
 */
async function main(): Promise<void> {
  const [base = 'http://127.0.0.1:3000', roles = 'op', tenant = 'tenant-acme', subject = 'demo-user'] =
    process.argv.slice(2);
  const config = loadConfig();
  if (!config.AUTH_JWT_SECRET) throw new Error('AUTH_JWT_SECRET is not set: sign-in links need it');
  const code = await mintLinkCode({
    secret: config.AUTH_JWT_SECRET,
    issuer: config.AUTH_JWT_ISSUER,
    subject,
    tenantId: tenant,
    roles: roles.split(','),
    ttlSeconds: Number(process.argv[6] ?? 15 * 60),
  });
  console.log(`${base.replace(/\/+$/, '')}/sign-in/link#code=${code}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
