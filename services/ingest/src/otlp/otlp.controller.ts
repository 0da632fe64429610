import { BadRequestException, Controller, Post, Req, Res, UnsupportedMediaTypeException } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createGunzip, createInflate } from 'node:zlib';
import { PassThrough, type Transform } from 'node:stream';
import { decodeTraceRequest, encodeTraceResponse, type OtlpEncoding } from './otlp.decoder';
import { OtlpAuth } from './otlp.auth';
import { OtlpService } from './otlp.service';

/** OTLP/HTTP's default path for traces: exporters append it to OTEL_EXPORTER_OTLP_ENDPOINT. */
export const OTLP_TRACES_PATH = '/v1/traces';

const CONTENT_TYPES: Record<OtlpEncoding, string> = { protobuf: 'application/x-protobuf', json: 'application/json' };
/**
 * One export can carry thousands of spans; OTLP exporters batch up to 512 spans by default, far below this.
 * Counted after decompression (and before: a compressed body over it is refused as it arrives).
 */
export const OTLP_BODY_LIMIT = 10 * 1024 * 1024;

const DECOMPRESSORS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
};

/**
 * Reads the body of OTLP requests on Fastify: protobuf as bytes (JSON is createFastifyApp's parser), gzip and
 * deflate bodies decompressed before either parser sees them, any other Content-Encoding refused with 415.
 * Fastify counts OTLP_BODY_LIMIT against both the compressed bytes received and the decompressed ones.
 */
export function useOtlpBodies(app: NestFastifyApplication): void {
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addContentTypeParser(CONTENT_TYPES.protobuf, { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );
  fastify.addHook('preParsing', (request, _reply, payload, done) => {
    const encoding = request.headers['content-encoding']?.trim().toLowerCase();
    if (!encoding || encoding === 'identity') return done(null, payload);
    const decompressor = DECOMPRESSORS[encoding];
    if (!decompressor) {
      return done(new UnsupportedMediaTypeException(`unsupported content encoding "${encoding}"`), payload);
    }
    // What Fastify's parsers read: the decompressed bytes, with the compressed count for its limit checks.
    const body = new PassThrough() as PassThrough & { receivedEncodedLength: number };
    body.receivedEncodedLength = 0;
    payload.on('data', (chunk: Buffer) => (body.receivedEncodedLength += chunk.length));
    const inflate = decompressor();
    // A body that is not what its Content-Encoding says is a malformed body: 400, as a problem.
    inflate.on('error', (error) =>
      body.destroy(new BadRequestException(`malformed ${encoding} body: ${error.message}`)),
    );
    payload.on('error', (error) => inflate.destroy(error));
    done(null, payload.pipe(inflate).pipe(body));
  });
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
  async export(@Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const scope = this.auth.scopeOf(request.headers.authorization);
    const encoding = encodingOf(request.headers['content-type']);
    if (!encoding) throw new UnsupportedMediaTypeException(`use ${Object.values(CONTENT_TYPES).join(' or ')}`);
    const decoded = decodeTraceRequest(request.body, encoding);
    if (!decoded.ok) throw new BadRequestException(decoded.reason);
    const result = await this.otlp.export(decoded.spans, scope);
    await reply.code(200).type(CONTENT_TYPES[encoding]).send(encodeTraceResponse(result, encoding));
  }
}

function encodingOf(contentType: string | undefined): OtlpEncoding | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  return (Object.keys(CONTENT_TYPES) as OtlpEncoding[]).find((encoding) => CONTENT_TYPES[encoding] === type);
}
