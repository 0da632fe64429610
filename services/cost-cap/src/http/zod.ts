import type { SchemaObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { z } from 'zod';

/** Request bodies are validated by the shared pipe of @agentmeter/http (unknown fields refused). */
export { ZodPipe } from '@agentmeter/http';

/** The OpenAPI schema of a zod contract (what clients send: defaults are optional). */
export function openApi(schema: z.ZodType, io: 'input' | 'output' = 'input'): SchemaObject {
  return z.toJSONSchema(schema, { target: 'openapi-3.0', io, unrepresentable: 'any' }) as SchemaObject;
}
