import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAgentEvent } from './envelope';
import { EXAMPLE_EVENTS } from './examples';
import { jsonSchemas } from './json-schema';

describe('committed JSON Schemas', () => {
  const dir = join(__dirname, '..', 'schemas');

  it('are exactly what the zod contracts generate (run `make schemas` after changing a contract)', () => {
    const committed = Object.fromEntries(
      readdirSync(dir).map((file) => [file, JSON.parse(readFileSync(join(dir, file), 'utf8')) as unknown]),
    );
    expect(committed).toEqual(jsonSchemas());
  });
});

describe('documented examples', () => {
  it.each(EXAMPLE_EVENTS.map((event) => [event.type, event]))('%s is valid', (_type, event) => {
    expect(parseAgentEvent(event)).toMatchObject({ ok: true });
  });
});
