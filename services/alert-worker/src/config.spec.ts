import { loadConfig } from './config';

describe('alert-worker configuration', () => {
  it('has working defaults', () => {
    expect(loadConfig({})).toMatchObject({
      PORT: 3004,
      ALERT_DELIVERY_TIMEOUT_MS: 10_000,
      ALERT_ALLOW_LOOPBACK_HTTP: false,
    });
  });

  it.each([
    [{ SMTP_URL: 'http://mail' }, /SMTP_URL/],
    [{ ALERT_ENCRYPTION_KEY: 'short' }, /ALERT_ENCRYPTION_KEY must be 32 bytes/],
    [{ ALERT_DELIVERY_TIMEOUT_MS: '60000', ALERT_DELIVERY_LEASE_MS: '90000' }, /ALERT_DELIVERY_LEASE_MS/],
    [{ ALERT_ALLOW_LOOPBACK_HTTP: 'yes' }, /ALERT_ALLOW_LOOPBACK_HTTP/],
  ])('refuses %o, naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });
});
