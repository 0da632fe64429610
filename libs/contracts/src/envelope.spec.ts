import { decodeKafkaEvent, decodeKafkaMessage, parseAgentEvent, storable } from './envelope';
import { UndecodableBatchHeaders } from './topics';

const valid = {
  specversion: '1.0',
  id: 'evt-1',
  source: 'coordinator/eu-1',
  type: 'llm_call',
  time: '2026-11-01T10:00:00Z',
  subject: 'tenant-a',
  data: {
    tenant_id: 'tenant-a',
    project_id: 'p',
    run_id: 'r',
    phase: 'plan',
    role: 'planner',
    model: 'gpt-4.1',
    provider: 'openai',
    prompt_tokens: 10,
    completion_tokens: 2,
    latency_ms: 100,
  },
};

describe('parseAgentEvent', () => {
  it('accepts a valid event and fills defaults', () => {
    const result = parseAgentEvent(valid);
    expect(result.ok).toBe(true);
    if (result.ok && result.event.type === 'llm_call') {
      expect(result.event.data).toMatchObject({ attempt: 1, cached_tokens: 0, cached: false, status: 'ok' });
    }
  });

  it.each([
    ['an unknown type', { ...valid, type: 'nope' }, /type/],
    ['a subject that is not the tenant', { ...valid, subject: 'tenant-b' }, /subject must equal data.tenant_id/],
    ['a bad time', { ...valid, time: 'yesterday' }, /time/],
    ['negative tokens', { ...valid, data: { ...valid.data, prompt_tokens: -1 } }, /data.prompt_tokens/],
    ['a float amount', { ...valid, data: { ...valid.data, cost_usd: '1e-5' } }, /data.cost_usd/],
    ['a missing run id', { ...valid, data: { ...valid.data, run_id: undefined } }, /data.run_id/],
    ['another CloudEvents version', { ...valid, specversion: '0.3' }, /specversion/],
  ])('rejects %s with a reason naming the field', (_name, input, reason) => {
    const result = parseAgentEvent(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });
});

describe('decodeKafkaEvent', () => {
  it('decodes structured mode', () => {
    expect(decodeKafkaEvent(Buffer.from(JSON.stringify(valid)), {}).ok).toBe(true);
  });

  it('decodes binary mode from ce_* headers', () => {
    const { data, ...attributes } = valid;
    const headers = Object.fromEntries(Object.entries(attributes).map(([k, v]) => [`ce_${k}`, Buffer.from(String(v))]));
    const result = decodeKafkaEvent(Buffer.from(JSON.stringify(data)), headers);
    expect(result).toMatchObject({ ok: true, event: { id: 'evt-1', type: 'llm_call' } });
  });

  it('replaces NUL and lone surrogates, which PostgreSQL cannot store, in every string and key', () => {
    // JSON.stringify escapes both: \u0000 and \udXXX, as a producer's JSON would.
    const event = {
      ...valid,
      id: 'id-\uD800',
      data: { ...valid.data, phase: 'plan\u0000b', tool_args: { 'k\uDC00': ['\uD83D\uDE00', 'x\uDBFF'] } },
    };
    const result = decodeKafkaEvent(Buffer.from(JSON.stringify(event)), { ce_note: Buffer.from('a\u0000') });
    expect(result).toMatchObject({ ok: true, event: { id: 'id-\uFFFD', data: { phase: 'plan\uFFFDb' } } });
    if (result.ok) expect(JSON.stringify(result.event)).not.toMatch(/\\u(0000|d[89a-f])/i);
    expect(storable({ ['__proto__']: 'a\u0000', pair: '\uD83D\uDE00' })).toEqual(
      Object.fromEntries([
        ['__proto__', 'a\uFFFD'],
        ['pair', '\uD83D\uDE00'],
      ]),
    );
  });

  it.each([
    ['an empty value', null, /empty/],
    ['non-JSON', Buffer.from('{nope'), /not JSON/],
  ])('rejects %s', (_name, value, reason) => {
    const result = decodeKafkaEvent(value, {});
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });
});

describe('decodeKafkaMessage', () => {
  const event = valid;
  const value = Buffer.from(JSON.stringify(event));
  const runId = (event.data as { run_id: string }).run_id;

  it('accepts an event keyed by its run id', () => {
    expect(decodeKafkaMessage({ key: Buffer.from(runId), value }).ok).toBe(true);
  });

  it('refuses an event whose key is not its run id', () => {
    expect(decodeKafkaMessage({ key: Buffer.from('other'), value })).toEqual({
      ok: false,
      reason: expect.stringMatching(/^key_mismatch: /),
    });
    expect(decodeKafkaMessage({ key: null, value })).toEqual({
      ok: false,
      reason: expect.stringMatching(/^key_mismatch: /),
    });
  });

  it('refuses invalid UTF-8 instead of repairing it', () => {
    const text = JSON.stringify({ ...event, id: 'evt-\u00e9' });
    const bytes = Buffer.from(text);
    const at = bytes.indexOf(Buffer.from('\u00e9'));
    bytes[at + 1] = 0x41; // a UTF-8 lead byte without its continuation
    expect(decodeKafkaMessage({ key: Buffer.from(runId), value: bytes })).toEqual({
      ok: false,
      reason: expect.stringMatching(/^invalid_utf8/),
    });
  });

  it('answers a record standing for an undecodable batch with its reason', () => {
    const headers = { [UndecodableBatchHeaders.Reason]: Buffer.from('lz4: bad frame') };
    expect(decodeKafkaMessage({ key: null, value: Buffer.from([1, 2, 3]), headers })).toEqual({
      ok: false,
      reason: 'undecodable_batch: lz4: bad frame',
    });
  });
});
