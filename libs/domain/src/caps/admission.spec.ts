import {
  type AdmissionRequest,
  type Counters,
  decideAdmission,
  type DimensionLimits,
  explainScopes,
  needs,
} from './admission';
import { resolveLimits } from './caps';

const zero = { committed: 0n, reserved: 0n };
const counters = (partial: Partial<Counters> = {}): Counters => ({
  run_tokens: zero,
  run_cost: zero,
  run_external: zero,
  tenant_cost: zero,
  ...partial,
});
const limits = (partial: Partial<DimensionLimits> = {}): DimensionLimits => ({
  run_tokens: null,
  run_cost: null,
  run_external: null,
  tenant_cost: null,
  ...partial,
});
const llm = (tokens: bigint, money: bigint, partial = false): AdmissionRequest => ({
  kind: 'llm',
  tokens,
  money,
  partial,
});
const charge = (money: bigint, partial = false): AdmissionRequest => ({ kind: 'charge', tokens: 0n, money, partial });

describe('decideAdmission', () => {
  it.each([
    ['no caps: allow', counters(), limits(), false, llm(10n, 10n), { status: 'allow', tokens: 10n, money: 10n }],
    [
      'fits exactly',
      counters({ tenant_cost: { committed: 60n, reserved: 30n } }),
      limits({ tenant_cost: 100n }),
      false,
      llm(0n, 10n),
      { status: 'allow' },
    ],
    [
      'one micro too much',
      counters({ tenant_cost: { committed: 60n, reserved: 31n } }),
      limits({ tenant_cost: 100n }),
      false,
      llm(0n, 10n),
      { status: 'deny', dimension: 'tenant_cost', reason: 'insufficient' },
    ],
    [
      'reserved spend counts',
      counters({ run_cost: { committed: 0n, reserved: 95n } }),
      limits({ run_cost: 100n }),
      false,
      llm(0n, 10n),
      { status: 'deny', dimension: 'run_cost', reason: 'insufficient' },
    ],
    [
      'tokens cap',
      counters({ run_tokens: { committed: 900n, reserved: 0n } }),
      limits({ run_tokens: 1000n }),
      false,
      llm(101n, 1n),
      { status: 'deny', dimension: 'run_tokens', reason: 'insufficient' },
    ],
    [
      'a charge does not use tokens',
      counters({ run_tokens: { committed: 900n, reserved: 100n } }),
      limits({ run_tokens: 1001n }),
      false,
      charge(5n),
      { status: 'allow' },
    ],
    [
      'a charge counts as external',
      counters({ run_external: { committed: 8n, reserved: 0n } }),
      limits({ run_external: 10n }),
      false,
      charge(5n),
      { status: 'deny', dimension: 'run_external' },
    ],
    [
      'an LLM call is not external',
      counters({ run_external: { committed: 8n, reserved: 0n } }),
      limits({ run_external: 10n }),
      false,
      llm(0n, 5n),
      { status: 'allow' },
    ],
    [
      'run checked before tenant',
      counters({ run_cost: { committed: 9n, reserved: 0n }, tenant_cost: { committed: 9n, reserved: 0n } }),
      limits({ run_cost: 10n, tenant_cost: 10n }),
      false,
      llm(0n, 5n),
      { status: 'deny', dimension: 'run_cost' },
    ],
    [
      'a reached cap blocks even a free request',
      counters({ tenant_cost: { committed: 100n, reserved: 0n } }),
      limits({ tenant_cost: 100n }),
      false,
      llm(5n, 0n),
      { status: 'deny', dimension: 'tenant_cost', reason: 'cap_reached' },
    ],
    [
      'a reached run cap blocks other dimensions',
      counters({ run_tokens: { committed: 50n, reserved: 0n } }),
      limits({ run_tokens: 50n }),
      false,
      charge(1n),
      { status: 'deny', dimension: 'run_tokens', reason: 'cap_reached' },
    ],
    [
      'reserved alone does not block',
      counters({ tenant_cost: { committed: 0n, reserved: 100n } }),
      limits({ tenant_cost: 100n }),
      false,
      llm(0n, 0n),
      { status: 'allow' },
    ],
    [
      'a zero cap denies',
      counters(),
      limits({ tenant_cost: 0n }),
      false,
      llm(0n, 1n),
      { status: 'deny', dimension: 'tenant_cost', reason: 'cap_reached' },
    ],
    [
      'stopped by wall time',
      counters(),
      limits(),
      true,
      llm(1n, 1n),
      { status: 'deny', dimension: 'run_wall_time', reason: 'stopped' },
    ],
    [
      'partial: the money left',
      counters({ tenant_cost: { committed: 70n, reserved: 10n } }),
      limits({ tenant_cost: 100n }),
      false,
      charge(50n, true),
      { status: 'partial', money: 20n },
    ],
    [
      'partial: the smallest room wins',
      counters({ run_cost: { committed: 0n, reserved: 90n }, tenant_cost: { committed: 70n, reserved: 0n } }),
      limits({ run_cost: 100n, tenant_cost: 100n }),
      false,
      charge(50n, true),
      { status: 'partial', money: 10n },
    ],
    [
      'partial: fits entirely',
      counters(),
      limits({ tenant_cost: 100n }),
      false,
      charge(50n, true),
      { status: 'allow', money: 50n },
    ],
    [
      'partial: nothing left',
      counters({ tenant_cost: { committed: 0n, reserved: 100n } }),
      limits({ tenant_cost: 100n }),
      false,
      charge(50n, true),
      { status: 'deny', dimension: 'tenant_cost', reason: 'insufficient' },
    ],
    [
      'partial: tokens must still fit',
      counters(),
      limits({ run_tokens: 10n, tenant_cost: 5n }),
      false,
      llm(20n, 9n, true),
      { status: 'deny', dimension: 'run_tokens' },
    ],
    [
      'partial: an LLM call is cut in $',
      counters(),
      limits({ run_tokens: 10n, tenant_cost: 5n }),
      false,
      llm(10n, 9n, true),
      { status: 'partial', tokens: 10n, money: 5n },
    ],
  ] as const)('%s', (_name, state, caps, stopped, request, outcome) => {
    expect(decideAdmission(state, caps, stopped, request)).toMatchObject(outcome);
  });

  it('never grants past a limit, whatever the order of requests (exhaustive small cases)', () => {
    for (let limit = 0n; limit <= 6n; limit++) {
      for (const sizes of [
        [1n, 2n, 3n],
        [3n, 3n, 1n],
        [6n, 1n],
        [2n, 2n, 2n, 2n],
      ]) {
        const state = counters();
        let held = 0n;
        for (const money of sizes) {
          const outcome = decideAdmission(state, limits({ tenant_cost: limit }), false, charge(money));
          if (outcome.status !== 'deny') {
            held += outcome.money;
            state.tenant_cost = { committed: 0n, reserved: held };
          }
        }
        expect(held <= limit).toBe(true);
      }
    }
  });
});

describe('needs', () => {
  it.each([
    ['llm', 7n, 3n, { run_tokens: 7n, run_cost: 3n, run_external: 0n, tenant_cost: 3n }],
    ['charge', 7n, 3n, { run_tokens: 0n, run_cost: 3n, run_external: 3n, tenant_cost: 3n }],
  ] as const)('%s', (kind, tokens, money, expected) => {
    expect(needs(kind, tokens, money)).toEqual(expected);
  });
});

describe('explainScopes', () => {
  it('carries scope, limit, spend, reserve, remaining, reset time and override of every cap', () => {
    const resetsAt = new Date('2026-11-26T08:00:00Z');
    const effective = resolveLimits({
      defaults: {
        dailyCostMicros: 100n,
        run: { tokens: null, wallTimeS: null, costMicros: 50n, externalMicros: null },
      },
      tenant: null,
      project: null,
      runCaps: null,
      runId: 'r',
      overrides: [],
      now: new Date('2026-11-25T12:00:00Z'),
    });
    const scopes = explainScopes(
      counters({ run_cost: { committed: 40n, reserved: 20n }, tenant_cost: { committed: 70n, reserved: 20n } }),
      effective,
      resetsAt,
    );
    expect(scopes).toEqual([
      {
        dimension: 'run_tokens',
        scope: 'run',
        cap: 'tokens',
        limit: null,
        spent: 0n,
        reserved: 0n,
        remaining: null,
        resetsAt: null,
        override: null,
      },
      {
        dimension: 'run_cost',
        scope: 'run',
        cap: 'cost',
        limit: 50n,
        spent: 40n,
        reserved: 20n,
        remaining: 0n,
        resetsAt: null,
        override: null,
      },
      {
        dimension: 'run_external',
        scope: 'run',
        cap: 'external',
        limit: null,
        spent: 0n,
        reserved: 0n,
        remaining: null,
        resetsAt: null,
        override: null,
      },
      {
        dimension: 'tenant_cost',
        scope: 'tenant',
        cap: 'cost',
        limit: 100n,
        spent: 70n,
        reserved: 20n,
        remaining: 10n,
        resetsAt,
        override: null,
      },
    ]);
  });
});
