import type { PipeTransform } from '@nestjs/common';
import { z } from 'zod';
import { InvalidRequestError } from '@agentmeter/http';

/** Validates a request body with a contract schema; the 400 names each bad field. */
export class ZodBody<S extends z.ZodType> implements PipeTransform<unknown, z.output<S>> {
  constructor(private readonly schema: S) {}

  transform(value: unknown): z.output<S> {
    const result = this.schema.safeParse(value ?? {});
    if (result.success) return result.data;
    throw new InvalidRequestError(
      result.error.issues
        .slice(0, 10)
        .map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`)
        .join('; '),
    );
  }
}

/** The JSON Schema of a contract, for OpenAPI (@ApiBody({ schema })). */
export function openApiSchema(schema: z.ZodType): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'openapi-3.0' }) as Record<
    string,
    unknown
  >;
  delete json.$schema;
  return json;
}
