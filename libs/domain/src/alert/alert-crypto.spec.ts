import { randomBytes } from 'node:crypto';
import { SecretBox, signWebhook, verifyWebhook } from './alert-crypto';

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('round-trips and never stores the plaintext', () => {
    const url = 'https://hooks.slack.com/services/T000/B000/XXXXXXXX';
    const sealed = box.seal(url, 'contact:1:url');
    expect(sealed.toString('utf8')).not.toContain('hooks.slack.com');
    expect(box.open(sealed, 'contact:1:url')).toBe(url);
    expect(box.seal(url, 'contact:1:url').equals(sealed)).toBe(false); // a fresh IV each time
  });

  it.each([
    ['another row', (s: Buffer) => s, 'contact:2:url'],
    [
      'a flipped bit',
      (s: Buffer) => Buffer.concat([s.subarray(0, 30), Buffer.from([s[30]! ^ 1]), s.subarray(31)]),
      'contact:1:url',
    ],
    ['another key', (s: Buffer) => s, null],
  ])('refuses %s', (_name, tamper, context) => {
    const sealed = tamper(box.seal('secret', 'contact:1:url'));
    const opener = context === null ? new SecretBox(randomBytes(32)) : box;
    expect(() => opener.open(sealed, context ?? 'contact:1:url')).toThrow();
  });

  it('reads base64 and hex keys and refuses other lengths', () => {
    const key = randomBytes(32);
    const sealed = new SecretBox(key).seal('x', 'c');
    expect(SecretBox.fromConfig(key.toString('base64')).open(sealed, 'c')).toBe('x');
    expect(SecretBox.fromConfig(key.toString('hex')).open(sealed, 'c')).toBe('x');
    expect(() => SecretBox.fromConfig(randomBytes(16).toString('base64'))).toThrow(/32 bytes/);
  });
});

describe('webhook signatures', () => {
  const secret = 'whsec_0123456789abcdef0123456789abcdef';
  const body = '{"version":1,"subject":"x"}';
  const t = 1_764_072_000;

  it('is HMAC-SHA256 over timestamp.body', () => {
    // echo -n '1764072000.{"version":1,"subject":"x"}' | openssl dgst -sha256 -hmac "$secret"
    expect(signWebhook(secret, t, body)).toMatch(/^v1=[0-9a-f]{64}$/);
  });

  it.each([
    ['a valid signature', String(t), signWebhook(secret, t, body), body, t + 10, true],
    ['another body', String(t), signWebhook(secret, t, body), `${body} `, t, false],
    ['another timestamp', String(t + 1), signWebhook(secret, t, body), body, t, false],
    ['an old timestamp (replay)', String(t), signWebhook(secret, t, body), body, t + 301, false],
    ['another secret', String(t), signWebhook(`${secret}x`, t, body), body, t, false],
    ['garbage', 'abc', 'v1=00', body, t, false],
  ])('%s', (_name, timestamp, signature, received, now, ok) => {
    expect(verifyWebhook(secret, timestamp, signature, received, now)).toBe(ok);
  });
});
