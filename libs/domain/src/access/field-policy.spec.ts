import { ROLES } from './query-access';
import { classOfKey, FIELD_POLICY, hiddenClasses, seesClass, withoutHidden } from './field-policy';

describe('field policy', () => {
  it('hides money from Support only, traces from all but OP and Admin', () => {
    for (const role of ROLES) {
      expect([role, seesClass([role], 'money')]).toEqual([role, role !== 'support']);
      expect([role, seesClass([role], 'traces')]).toEqual([role, role === 'op' || role === 'admin']);
    }
  });

  it("lets an Owner alone see tokens only while the tenant's setting is on; any other role always", () => {
    expect(seesClass(['owner'], 'tokens', true)).toBe(true);
    expect(seesClass(['owner'], 'tokens', false)).toBe(false);
    expect(seesClass(['owner', 'bu'], 'tokens', false)).toBe(true);
  });

  it('gives a principal with several roles the widest view', () => {
    expect([...hiddenClasses(['support', 'finance'])]).toEqual(['traces']);
    expect([...hiddenClasses(['support'])].sort()).toEqual(['money', 'traces']);
  });

  it('classes keys by name and by the *_usd / *_micros pattern', () => {
    for (const key of FIELD_POLICY.money.keys) expect(classOfKey(key)).toBe('money');
    expect(classOfKey('cost_micros')).toBe('money');
    expect(classOfKey('grafana_url')).toBe('traces');
    expect(classOfKey('total_tokens')).toBe('tokens');
    expect(classOfKey('run_id')).toBeNull();
    expect(classOfKey('limit')).toBeNull();
  });

  it('removes hidden fields at any depth, and dollar limits of cost cap crossings', () => {
    const answer = {
      limit: 50,
      items: [
        { run_id: 'r', cost_usd: '1.0', external_cost_usd: '0', totals: { cost_usd: '1', llm_calls: 2 } },
        { data: { cap: 'cost', limit: '5.0', observed: '5.1', override: { limit: '9', actor: 'a' } } },
        { data: { cap: 'tokens', limit: '1000', observed: '1001' } },
        { data: { trace_id: 'abc', amount_usd: '2' } },
      ],
    };
    expect(withoutHidden(answer, hiddenClasses(['support']))).toEqual({
      limit: 50,
      items: [
        { run_id: 'r', totals: { llm_calls: 2 } },
        { data: { cap: 'cost', override: { actor: 'a' } } },
        { data: { cap: 'tokens', limit: '1000', observed: '1001' } },
        { data: {} },
      ],
    });
    expect(withoutHidden(answer, hiddenClasses(['admin']))).toBe(answer);
  });
});
