import { testRedactor } from '@agentmeter/testing';
import { sanitizeDeadLetter } from './events.consumer';

describe('sanitizeDeadLetter', () => {
  const redactor = testRedactor();
  const secret = 'FAKEIYZGc5TPdJQ0KGNPA3Tm12UEyFFC';

  it('finds a secret escaped once more inside a JSON message', () => {
    const message = JSON.stringify({ source: `{\\"client_secret\\":\\"${secret}\\"}`, type: 'llm_call' });
    expect(redactor.text(message).text).toContain(secret); // text rules alone miss it
    const clean = sanitizeDeadLetter(message, redactor);
    expect(clean).not.toContain(secret);
    expect(JSON.parse(clean)).toEqual({
      source: '{\\"client_secret\\":\\"[REDACTED:secret_assignment]\\"}',
      type: 'llm_call',
    });
  });

  it('redacts text that is not JSON, and keeps a clean message byte for byte', () => {
    expect(sanitizeDeadLetter('not an event: mail jane@example.com', redactor)).toBe(
      'not an event: mail [REDACTED:email]',
    );
    const clean = '{ "type": "llm_call",  "id": "1" }';
    expect(sanitizeDeadLetter(clean, redactor)).toBe(clean);
    expect(sanitizeDeadLetter('{not json, jane@example.com', redactor)).toBe('{not json, [REDACTED:email]');
  });
});
