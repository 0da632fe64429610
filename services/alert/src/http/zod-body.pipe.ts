import { z } from 'zod';

/** Request bodies are validated by the shared pipe of @agentmeter/http (unknown fields refused). */
export { ZodPipe as ZodBody } from '@agentmeter/http';

/** The JSON Schema of a contract, for OpenAPI (@ApiBody({ schema })). */
export function openApiSchema(schema: z.ZodType): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'openapi-3.0' }) as Record<
    string,
    unknown
  >;
  delete json.$schema;
  return json;
}
