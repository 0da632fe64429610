import { lifetimeProblem } from './jwt.verifier';

describe('JWT lifetime rules', () => {
  const now = 1_800_000_000;
  const limits = { maxLifetimeS: 86_400, skewS: 30 };

  it.each([
    ['no exp', { iat: now }, 'exp is required'],
    ['iat a day in the future', { iat: now + 86_400, exp: now + 2 * 86_400 }, 'iat is in the future'],
    ['nbf beyond the skew', { exp: now + 60, nbf: now + 31 }, 'nbf is in the future'],
    ['a lifetime above the maximum', { iat: now, exp: now + 86_401 }, 'lifetime longer'],
    ['no iat and exp too far away', { exp: now + 86_401 }, 'lifetime longer'],
  ])('refuses %s', (_name, payload, reason) => {
    expect(lifetimeProblem(payload, now, limits)).toContain(reason);
  });

  it.each([
    ['12 hours from now', { iat: now, exp: now + 43_200 }],
    ['iat within the skew', { iat: now + 30, exp: now + 600 }],
    ['no iat, exp soon', { exp: now + 600 }],
  ])('accepts %s', (_name, payload) => {
    expect(lifetimeProblem(payload, now, limits)).toBeNull();
  });
});
