import { Readable } from 'node:stream';
import {
  type CallHandler,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
  SetMetadata,
  StreamableFile,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiProduces } from '@nestjs/swagger';
import { applyDecorators } from '@nestjs/common';
import { stringify } from 'csv-stringify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { map, type Observable } from 'rxjs';
import { DeclareQuery, InvalidRequestError } from '@agentmeter/http';

type Row = Record<string, unknown>;

/** How an answer becomes CSV rows: the list under `path` (one row per item), or 'long' for dashboards. */
export interface CsvShape {
  filename: string;
  /** A dotted path to the array to export (e.g. "items"), or 'long' (section,item,field,value rows). */
  rows: string;
}

const CSV = 'agentmeter:csv';

/** Marks an answer as exportable as CSV (`Accept: text/csv` or `?format=csv`). */
export const CsvExport = (shape: CsvShape) =>
  applyDecorators(SetMetadata(CSV, shape), ApiProduces('application/json', 'text/csv'), DeclareQuery('format'));

export function wantsCsv(request: FastifyRequest): boolean {
  const format = (request.query as Record<string, unknown> | undefined)?.format;
  if (format === 'csv') return true;
  if (format === 'json') return false;
  const accept = request.headers.accept ?? '';
  return /\btext\/csv\b/i.test(accept) && !/\bapplication\/json\b/i.test(accept);
}

/**
 * Turns a handler's JSON answer into CSV when asked, streamed through csv-stringify (rows are written as
 * the client reads them). The rows are exactly the JSON answer's, flattened: nested objects become dotted
 * column names, arrays a JSON cell; so CSV and JSON always agree.
 */
@Injectable()
export class CsvInterceptor implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    if (!wantsCsv(request)) return next.handle();
    const shape = this.reflector.get<CsvShape | undefined>(CSV, context.getHandler());
    if (!shape) throw new InvalidRequestError('this answer has no CSV form');
    const response = context.switchToHttp().getResponse<FastifyReply>();
    return next.handle().pipe(
      map((body: unknown) => {
        const next = (body as { next_cursor?: unknown })?.next_cursor;
        if (typeof next === 'string') void response.header('X-Next-Cursor', next);
        return toCsv(csvRows(body, shape), shape.filename);
      }),
    );
  }
}

export function csvRows(body: unknown, shape: CsvShape): Row[] {
  if (shape.rows === 'long') return longRows(body);
  let value: unknown = body;
  for (const part of shape.rows.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
  return Array.isArray(value) ? value.map((item) => flatten(item as Row)) : [];
}

export function toCsv(rows: Row[], filename: string): StreamableFile {
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const row of rows) {
    for (const key of Object.keys(row)) {
      if (!seen.has(key)) {
        seen.add(key);
        columns.push(key);
      }
    }
  }
  const csv = Readable.from(rows).pipe(
    stringify({
      header: true,
      columns: (columns.length > 0 ? columns : ['empty']).map((key) => ({ key, header: neutraliseCell(key) })),
      cast: { boolean: String, string: neutraliseCell },
    }),
  );
  return new StreamableFile(csv, {
    type: 'text/csv; charset=utf-8',
    disposition: `attachment; filename="${filename}.csv"`,
  });
}

/** A cell a spreadsheet would read as a formula: starts with =, +, -, @, tab or carriage return. */
const FORMULA = /^[=+\-@\t\r]/;
/** A plain number is a value, not a formula, whatever its sign (so money and deltas stay numbers). */
const PLAIN_NUMBER = /^[+-]?\d+(?:\.\d+)?$/;

/**
 * CSV injection (OWASP): a text cell that a spreadsheet would evaluate is prefixed with a single quote, so it
 * is shown as text. Applied to every string cell and column name of every CSV answer.
 */
export function neutraliseCell(value: string): string {
  return FORMULA.test(value) && !PLAIN_NUMBER.test(value) ? `'${value}` : value;
}

/** Nested objects become dotted keys; arrays become a JSON cell; null stays empty. */
export function flatten(value: Row, prefix = '', out: Row = {}): Row {
  for (const [key, item] of Object.entries(value)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (item !== null && typeof item === 'object' && !Array.isArray(item)) flatten(item as Row, name, out);
    else out[name] = Array.isArray(item) ? JSON.stringify(item) : item;
  }
  return out;
}

/**
 * A dashboard as long rows: (section, item, field, value). `section` is a top-level key; `item` the index
 * within a list section (empty otherwise); `field` the dotted path inside it.
 */
export function longRows(body: unknown): Row[] {
  const rows: Row[] = [];
  for (const [section, value] of Object.entries((body ?? {}) as Row)) {
    if (Array.isArray(value)) {
      value.forEach((item, index) => {
        if (item !== null && typeof item === 'object') {
          for (const [field, cell] of Object.entries(flatten(item as Row))) {
            rows.push({ section, item: index, field, value: cell });
          }
        } else rows.push({ section, item: index, field: '', value: item });
      });
    } else if (value !== null && typeof value === 'object') {
      for (const [field, cell] of Object.entries(flatten(value as Row)))
        rows.push({ section, item: '', field, value: cell });
    } else rows.push({ section, item: '', field: '', value });
  }
  return rows;
}
