import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { ApiBody, ApiQuery } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { InvalidRequestError } from '@agentmeter/http';

/** Every query accepts `format=csv|json` (CSV export, see csv.interceptor.ts). */
const FORMAT = { format: z.enum(['json', 'csv']).optional() };

/** Parses a value with a zod schema; a failure is a 400 whose detail names each bad field and why. */
export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const reason = result.error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
  throw new InvalidRequestError(reason);
}

/** JSON Schema of a zod schema for OpenAPI (what a client sends: the input side). */
export function openApiSchema(schema: z.ZodType, io: 'input' | 'output' = 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...json } = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'openapi-3.0' });
  return json as Record<string, unknown>;
}

/**
 * The request's query string, validated by a zod object schema (unknown parameters are refused), and
 * documented in OpenAPI from the same schema.
 */
export function ValidQuery<T extends z.ZodObject>(schema: T) {
  const strict = schema.extend(FORMAT).strict();
  const document: ParameterDecorator = (target, key, _index) => {
    if (key === undefined) return;
    const descriptor = Object.getOwnPropertyDescriptor(target, key)!;
    for (const [name, field] of Object.entries(strict.shape)) {
      const json = openApiSchema(field as z.ZodType, 'input');
      const description = typeof json.description === 'string' ? json.description : undefined;
      ApiQuery({ name, required: !(field as z.ZodType).safeParse(undefined).success, schema: json, description })(
        target,
        key,
        descriptor,
      );
    }
  };
  return createParamDecorator(
    (_: unknown, context: ExecutionContext) =>
      parseOrThrow(strict, context.switchToHttp().getRequest<Request>().query ?? {}) as z.output<T>,
    [document],
  )();
}

/** The request's JSON body, validated by a zod schema and documented in OpenAPI from it. */
export function ValidBody<T extends z.ZodType>(schema: T) {
  const document: ParameterDecorator = (target, key, _index) => {
    if (key === undefined) return;
    ApiBody({ schema: openApiSchema(schema, 'input') })(target, key, Object.getOwnPropertyDescriptor(target, key)!);
  };
  return createParamDecorator(
    (_: unknown, context: ExecutionContext) =>
      parseOrThrow(schema, context.switchToHttp().getRequest<Request>().body ?? {}) as z.output<T>,
    [document],
  )();
}

// Shared parameter shapes ------------------------------------------------------------------------------

/** Identifiers in paths and filters: printable, bounded; anything else is refused before any SQL. */
export const Id = z
  .string()
  .min(1)
  .max(200)
  .refine((value) => ![...value].some((c) => c.charCodeAt(0) < 0x20), 'control characters are not allowed');

export const Limit = z.coerce.number().int().min(1).max(10_000).describe('page size (capped by QUERY_MAX_PAGE_SIZE)');
export const Cursor = z.string().max(1_000).describe('opaque cursor from the previous page');
export const Time = z.iso.datetime({ offset: true });
export const Period = z
  .string()
  .regex(/^[1-9]\d{0,3}d$/, 'a number of days such as 30d')
  .describe('whole UTC days ending today, e.g. 7d or 30d');
export const Interval = z.enum(['day', 'week', 'month']).describe('split the answer into time buckets');

export function parseId(value: string, name = 'id'): string {
  return parseOrThrow(Id.describe(name), value);
}
