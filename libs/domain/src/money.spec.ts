import { formatUsd, parseUsd, parseUsdUp, tokenCost } from './money';

describe('money', () => {
  it.each([
    ['0', 0n],
    ['1', 1_000_000n],
    ['0.000001', 1n],
    ['12.5', 12_500_000n],
    ['0.0000005', 1n],
    ['0.0000004', 0n],
    ['-2.25', -2_250_000n],
    ['123456789012.123456', 123_456_789_012_123_456n],
  ])('parses %s', (input, micros) => {
    expect(parseUsd(input)).toBe(micros);
  });

  it.each(['', 'abc', '1e5', '1.', '.5', '1,5', 'NaN'])('rejects %p', (input) => {
    expect(() => parseUsd(input)).toThrow('not a decimal amount');
  });

  it.each([
    [0n, '0.000000'],
    [1n, '0.000001'],
    [12_500_000n, '12.500000'],
    [-2_250_000n, '-2.250000'],
  ])('formats %p', (micros, text) => {
    expect(formatUsd(micros)).toBe(text);
    expect(parseUsd(text)).toBe(micros);
  });

  it('prices tokens per million with half-up rounding', () => {
    expect(tokenCost(1_000_000n, 2_500_000n)).toBe(2_500_000n);
    expect(tokenCost(1n, 2_500_000n)).toBe(3n); // 2.5 micros rounds up
    expect(tokenCost(0n, 2_500_000n)).toBe(0n);
  });

  it.each([
    ['0.0000001', 1n],
    ['0.0000000', 0n],
    ['0.010000', 10_000n],
    ['0.0100001', 10_001n],
    ['1.9999999', 2_000_000n],
    ['5', 5_000_000n],
    ['-0.0000019', -1n],
  ])('rounds an estimate %p up to %p micros', (text, micros) => {
    expect(parseUsdUp(text)).toBe(micros);
  });
});
