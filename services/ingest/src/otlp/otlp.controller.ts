import { BadRequestException, Controller, Post, Req, Res, UnsupportedMediaTypeException } from '@nestjs/common';
import { json, raw, type NextFunction, type Request, type Response } from 'express';
import { decodeTraceRequest, encodeTraceResponse, type OtlpEncoding } from './otlp.decoder';
import { OtlpAuth } from './otlp.auth';
import { OtlpService } from './otlp.service';

/** OTLP/HTTP's default path for traces: exporters append it to OTEL_EXPORTER_OTLP_ENDPOINT. */
export const OTLP_TRACES_PATH = '/v1/traces';

const CONTENT_TYPES: Record<OtlpEncoding, string> = { protobuf: 'application/x-protobuf', json: 'application/json' };
/** One export can carry thousands of spans; OTLP exporters batch up to 512 spans by default, far below this. */
const BODY_LIMIT = '10mb';

const parseProtobuf = raw({ type: CONTENT_TYPES.protobuf, limit: BODY_LIMIT });
const parseJson = json({ type: CONTENT_TYPES.json, limit: BODY_LIMIT });

/**
 * Reads the body of OTLP requests (gzip and deflate included). bootstrap() registers it for OTLP_TRACES_PATH
 * before Nest's own parsers (JSON up to 100 kB), which then find the body read and leave it. Keep it one
 * function not named "jsonParser": Nest skips its global JSON parser when a middleware of that name exists.
 */
export function otlpBodyParser(request: Request, response: Response, next: NextFunction): void {
  parseProtobuf(request, response, (error?: unknown) => (error ? next(error) : parseJson(request, response, next)));
}

/** OTLP/HTTP trace receiver (https://opentelemetry.io/docs/specs/otlp/#otlphttp); mapping in docs/otlp.md. */
@Controller()
export class OtlpController {
  constructor(
    private readonly otlp: OtlpService,
    private readonly auth: OtlpAuth,
  ) {}

  /** 200 only once Kafka has every event; 400 and 415 are final for exporters, 503 is retried. */
  @Post(OTLP_TRACES_PATH)
  async export(@Req() request: Request, @Res() response: Response): Promise<void> {
    const scope = this.auth.scopeOf(request.headers.authorization);
    const encoding = encodingOf(request.headers['content-type']);
    if (!encoding) throw new UnsupportedMediaTypeException(`use ${Object.values(CONTENT_TYPES).join(' or ')}`);
    const decoded = decodeTraceRequest(request.body, encoding);
    if (!decoded.ok) throw new BadRequestException(decoded.reason);
    const result = await this.otlp.export(decoded.spans, scope);
    response.status(200).type(CONTENT_TYPES[encoding]).send(encodeTraceResponse(result, encoding));
  }
}

function encodingOf(contentType: string | undefined): OtlpEncoding | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  return (Object.keys(CONTENT_TYPES) as OtlpEncoding[]).find((encoding) => CONTENT_TYPES[encoding] === type);
}
