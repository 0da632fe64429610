import { SignJWT } from 'jose';

/**
 * `make token ROLE=op TENANT=t1`: prints a bearer token signed with AUTH_JWT_SECRET, for trying the API
 * locally. Production tokens come from the identity provider, not from this tool.
 */
async function main(): Promise<void> {
  const secret = process.env.AUTH_JWT_SECRET;
  if (!secret) throw new Error('AUTH_JWT_SECRET is not set');
  const [role = 'op', tenant = 'tenant-acme', subject = 'dev-user'] = process.argv.slice(2);
  const token = await new SignJWT({ tenant_id: tenant, roles: role.split(',') })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(subject)
    .setIssuer(process.env.AUTH_JWT_ISSUER ?? 'agentmeter')
    .setAudience(process.env.AUTH_JWT_AUDIENCE ?? 'agentmeter-api')
    .setIssuedAt()
    .setExpirationTime('12h')
    .sign(new TextEncoder().encode(secret));
  console.log(token);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
