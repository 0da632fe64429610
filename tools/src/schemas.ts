import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { AgentEvent, EVENT_TYPES, EventData } from '@agentmeter/contracts';

/**
 * `make schemas`: writes JSON Schema files generated from the zod contracts into
 * libs/contracts/schemas, so producers in any language can validate what they send.
 */
const out = join(process.argv[2] ?? 'libs/contracts/schemas');
mkdirSync(out, { recursive: true });

function write(name: string, schema: z.ZodType): void {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
  writeFileSync(join(out, `${name}.schema.json`), `${JSON.stringify(json, null, 2)}\n`);
}

write('agent-event', AgentEvent);
for (const type of EVENT_TYPES) write(`data.${type}`, EventData[type]);
console.log(`wrote ${EVENT_TYPES.length + 1} schemas to ${out}`);
