import {
  type CallHandler,
  createParamDecorator,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
  type PipeTransform,
} from '@nestjs/common';
import { CUSTOM_ROUTE_ARGS_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import { ApiBody, ApiQuery } from '@nestjs/swagger';
import type { FastifyRequest as Request } from 'fastify';
import type { Observable } from 'rxjs';
import { z } from 'zod';
import { InvalidRequestError } from './problem';

/*
 * The one validation of request input for every HTTP service (docs/security.md "Bad requests"). Three layers:
 * - RequestHygieneInterceptor (global): the text of every path parameter, query value and JSON body:
 *   no control characters but tab, LF and CR, no lone surrogates, no key named __proto__, constructor or
 *   prototype; no query parameter the route does not declare; no body on a route that takes none.
 * - ZodPipe / ValidBody: the route's zod schema, then no field that the schema does not know.
 * - ValidQuery: the query string against a strict zod object (which declares the route's parameters).
 * Each refusal is a 400 problem+json whose detail names the field and why.
 */

/** Keys that could reach an object's prototype if anything ever copied them with assignment. */
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

// C0 controls but tab (09), LF (0A), CR (0D); DEL; C1 controls: exactly what this rule is about.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const MAX_DEPTH = 32;

/** Why a string may not be accepted as text, or null. */
function textProblem(value: string): string | null {
  if (CONTROL.test(value)) return 'control characters are not allowed';
  if (LONE_SURROGATE.test(value)) return 'a lone UTF-16 surrogate is not valid text';
  return null;
}

/** The first problem in a parsed JSON value or query object (field path and reason), or null. */
export function inputProblem(value: unknown, path: string[] = []): string | null {
  if (path.length > MAX_DEPTH) return `${fieldName(path)}: nested deeper than ${MAX_DEPTH} levels`;
  if (typeof value === 'string') {
    const problem = textProblem(value);
    return problem ? `${fieldName(path)}: ${problem}` : null;
  }
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = inputProblem(value[i], [...path, String(i)]);
      if (problem) return problem;
    }
    return null;
  }
  for (const key of Object.keys(value)) {
    const at = [...path, key];
    if (FORBIDDEN_KEYS.has(key)) return `${fieldName(at)}: field not allowed`;
    const keyProblem = textProblem(key);
    if (keyProblem) return `${fieldName(at)}: field name: ${keyProblem}`;
    const problem = inputProblem((value as Record<string, unknown>)[key], at);
    if (problem) return problem;
  }
  return null;
}

/**
 * Fields of the input that the schema dropped: every key of an input object must be in the parsed object
 * at the same path (zod strips what it does not know). Where the schema turned a value into something else
 * (a transform), there is nothing to compare and the walk stops.
 */
export function unknownFields(input: unknown, output: unknown, path: string[] = []): string[] {
  if (Array.isArray(input) && Array.isArray(output) && input.length === output.length) {
    return input.flatMap((item, i) => unknownFields(item, output[i], [...path, String(i)]));
  }
  if (!isPlainObject(input) || !isPlainObject(output)) return [];
  return Object.keys(input).flatMap((key) =>
    Object.hasOwn(output, key) ? unknownFields(input[key], output[key], [...path, key]) : [fieldName([...path, key])],
  );
}

/**
 * Parses input with a zod schema and refuses fields the schema does not know; a failure is a 400 whose
 * detail names each bad field and why.
 */
export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, what = 'request'): z.output<T> {
  const hygiene = inputProblem(value);
  if (hygiene) throw new InvalidRequestError(`invalid ${what}: ${hygiene}`);
  const result = schema.safeParse(value);
  if (!result.success) {
    const reason = result.error.issues
      .slice(0, 10)
      .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
      .join('; ');
    throw new InvalidRequestError(`invalid ${what}: ${reason}`);
  }
  const unknown = unknownFields(value, result.data);
  if (unknown.length > 0) {
    throw new InvalidRequestError(
      `invalid ${what}: ${unknown
        .slice(0, 10)
        .map((field) => `${field}: unknown field`)
        .join('; ')}`,
    );
  }
  return result.data;
}

/** A request body validated by a zod contract: `@Body(new ZodPipe(Schema))`. */
export class ZodPipe<T extends z.ZodType> implements PipeTransform<unknown, z.output<T>> {
  constructor(private readonly schema: T) {}

  transform(value: unknown): z.output<T> {
    return parseOrThrow(this.schema, value ?? {}, 'request body');
  }
}

/** JSON Schema of a zod schema for OpenAPI (an answer by default; `input` for what a client sends). */
export function openApiSchema(schema: z.ZodType, io: 'input' | 'output' = 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...json } = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'openapi-3.0' });
  return json as Record<string, unknown>;
}

const QUERY_NAMES = 'agentmeter:query-names';
const TAKES_BODY = 'agentmeter:takes-body';

function declareQueryNames(handler: object, names: string[]): void {
  const known = (Reflect.getMetadata(QUERY_NAMES, handler) as string[] | undefined) ?? [];
  Reflect.defineMetadata(QUERY_NAMES, [...new Set([...known, ...names])], handler);
}

/**
 * Declares query parameters that a handler reads some other way than through ValidQuery or @Query (an
 * interceptor such as CSV export's `format`), so that RequestHygieneInterceptor accepts them.
 */
export function DeclareQuery(...names: string[]): MethodDecorator {
  return (_target, _key, descriptor) => declareQueryNames(descriptor.value as object, names);
}

/**
 * The request's query string, validated by a strict zod object schema (unknown parameters are refused), and
 * documented in OpenAPI from the same schema. `extra` adds parameters every route of a service shares.
 */
export function ValidQuery<T extends z.ZodObject>(schema: T, extra: z.ZodRawShape = {}) {
  const strict = schema.extend(extra).strict();
  const document: ParameterDecorator = (target, key, _index) => {
    if (key === undefined) return;
    const descriptor = Object.getOwnPropertyDescriptor(target, key)!;
    declareQueryNames(descriptor.value as object, Object.keys(strict.shape));
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
      parseOrThrow(strict, context.switchToHttp().getRequest<Request>().query ?? {}, 'query') as z.output<T>,
    [document],
  )();
}

/** The request's JSON body, validated by a zod schema (unknown fields refused) and documented in OpenAPI. */
export function ValidBody<T extends z.ZodType>(schema: T) {
  const document: ParameterDecorator = (target, key, _index) => {
    if (key === undefined) return;
    const descriptor = Object.getOwnPropertyDescriptor(target, key)!;
    Reflect.defineMetadata(TAKES_BODY, true, descriptor.value as object);
    ApiBody({ schema: openApiSchema(schema, 'input') })(target, key, descriptor);
  };
  return createParamDecorator(
    (_: unknown, context: ExecutionContext) =>
      parseOrThrow(schema, context.switchToHttp().getRequest<Request>().body ?? {}, 'request body') as z.output<T>,
    [document],
  )();
}

interface RouteArgument {
  index: number;
  data?: unknown;
}

/** What a handler declares it reads from the request: query parameter names (null: any) and a body. */
interface RouteInput {
  queryNames: ReadonlySet<string> | null;
  /** Parameters read with @Query('name'): one string each (ValidQuery schemas decide for their own). */
  singleNames: ReadonlySet<string>;
  /** Takes a body, or reads the raw request itself (then its own code decides). */
  body: boolean;
}

const routeInputs = new WeakMap<object, RouteInput>();

function routeInputOf(context: ExecutionContext): RouteInput {
  const handler = context.getHandler();
  const known = routeInputs.get(handler);
  if (known) return known;
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, context.getClass(), handler.name) ?? {}) as Record<
    string,
    RouteArgument
  >;
  const declared = (Reflect.getMetadata(QUERY_NAMES, handler) as string[] | undefined) ?? [];
  let anyQuery = false;
  let body = Reflect.getMetadata(TAKES_BODY, handler) === true;
  const names = new Set(declared);
  const singleNames = new Set<string>();
  for (const [key, argument] of Object.entries(args)) {
    if (key.includes(CUSTOM_ROUTE_ARGS_METADATA)) continue;
    const type = Number(key.split(':')[0]);
    if (type === RouteParamtypes.QUERY) {
      if (typeof argument.data === 'string') {
        names.add(argument.data);
        singleNames.add(argument.data);
      } else anyQuery = true;
    } else if (type === RouteParamtypes.BODY || type === RouteParamtypes.RAW_BODY || type === RouteParamtypes.REQUEST) {
      body = true;
    }
  }
  const input = { queryNames: anyQuery ? null : names, singleNames, body };
  routeInputs.set(handler, input);
  return input;
}

/**
 * Global interceptor (after the guards, so a request without a credential still gets 401 first): the text
 * rules on every query value and JSON body, parameters the route does not declare, a body the route does not
 * take. See the comment at the top of this file.
 */
@Injectable()
export class RequestHygieneInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest<Request>();
    const route = routeInputOf(context);
    const query = (request.query ?? {}) as Record<string, unknown>;
    if (route.queryNames) {
      const unknown = Object.keys(query).filter((name) => !route.queryNames!.has(name));
      if (unknown.length > 0) {
        throw new InvalidRequestError(
          `invalid query: ${unknown
            .slice(0, 10)
            .map((name) => `${truncate(name)}: unknown parameter`)
            .join('; ')}`,
        );
      }
    }
    const repeated = [...route.singleNames].find(
      (name) => query[name] !== undefined && typeof query[name] !== 'string',
    );
    if (repeated) throw new InvalidRequestError(`invalid query: ${repeated}: give it once, as text`);
    const paramProblem = inputProblem(request.params ?? {});
    if (paramProblem) throw new InvalidRequestError(`invalid path: ${paramProblem}`);
    const queryProblem = inputProblem(query);
    if (queryProblem) throw new InvalidRequestError(`invalid query: ${queryProblem}`);
    const body: unknown = request.body;
    const bodyProblem = inputProblem(body);
    if (bodyProblem) throw new InvalidRequestError(`invalid request body: ${bodyProblem}`);
    if (!route.body && hasContent(body))
      throw new InvalidRequestError('invalid request body: this route takes no body');
    return next.handle();
  }
}

function hasContent(body: unknown): boolean {
  if (body === undefined || body === null) return false;
  if (Buffer.isBuffer(body)) return body.length > 0;
  if (isPlainObject(body)) return Object.keys(body).length > 0;
  return true;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

function fieldName(path: string[]): string {
  return path.length === 0 ? '(root)' : truncate(path.join('.'));
}

/** Names echoed in a detail are bounded (and their text is already known to be clean or is escaped by JSON). */
function truncate(name: string): string {
  return name.length > 100 ? `${name.slice(0, 100)}…` : name;
}
