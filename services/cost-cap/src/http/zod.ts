import type { z } from 'zod';
import { openApiSchema } from '@agentmeter/http';

/** Request bodies are validated by the shared pipe of @agentmeter/http (unknown fields refused). */
export { ZodPipe } from '@agentmeter/http';

/** The OpenAPI schema of a zod contract (what clients send: defaults are optional). */
export function openApi(schema: z.ZodType, io: 'input' | 'output' = 'input'): Record<string, unknown> {
  return openApiSchema(schema, io);
}
