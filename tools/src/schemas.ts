import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXAMPLE_EVENTS, jsonSchemas } from '@agentmeter/contracts';

/** `make schemas`: writes the JSON Schemas of the contracts into libs/contracts/schemas (committed). */
const out = process.argv[2] ?? 'libs/contracts/schemas';
mkdirSync(out, { recursive: true });
const schemas = jsonSchemas();
for (const [file, schema] of Object.entries(schemas))
  writeFileSync(join(out, file), `${JSON.stringify(schema, null, 2)}\n`);
console.log(`wrote ${Object.keys(schemas).length} schemas to ${out}`);

// docs/events.md: its hand-written part is kept; from the first example on (`## <first type>`), one example of
// each type, generated from the same examples the tests validate.
const docsPath = process.argv[3] ?? 'docs/events.md';
const current = readFileSync(docsPath, 'utf8');
const firstExample = current.indexOf(`\n## ${EXAMPLE_EVENTS[0]!.type}\n`);
if (firstExample < 0) throw new Error(`${docsPath} has no "## ${EXAMPLE_EVENTS[0]!.type}" heading to replace from`);
const examples = EXAMPLE_EVENTS.flatMap((event) => [
  `## ${event.type}`,
  '',
  '```json',
  JSON.stringify(event, null, 2),
  '```',
  '',
]).join('\n');
writeFileSync(docsPath, `${current.slice(0, firstExample + 1)}${examples}`);
console.log(`wrote the examples of ${docsPath}`);
