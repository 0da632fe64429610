import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { gzip, unzip, zstdCompress, zstdDecompress } from 'node:zlib';
import { CompressionCodecs, CompressionTypes } from 'kafkajs';
import { compressFrame, decompressFrame } from 'lz4-napi';
import { compress as snappyCompress, uncompress as snappyUncompress } from 'snappy';
import { UndecodableBatchHeaders } from '@agentmeter/contracts';

/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's record encoder and decoders are not typed */
const Encoder = require('kafkajs/src/protocol/encoder') as new (...args: never[]) => {
  writeBuffer(buffer: Buffer): unknown;
  buffer: Buffer;
};
const Decoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => {
  readVarIntBytes(): Buffer | null;
};
const encodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0') as (record: {
  offsetDelta: number;
  timestampDelta?: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}) => { buffer: Buffer };
const decodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/decoder') as (
  decoder: InstanceType<typeof Decoder>,
  context: Record<string, unknown>,
) => unknown;
/* eslint-enable @typescript-eslint/no-require-imports */

/**
 * Every compression codec Kafka defines, for kafkajs (which ships gzip only and fails the whole fetch, so
 * the consumer, on any other): gzip, snappy (raw blocks as librdkafka writes them and xerial framing as the
 * Java client writes it), lz4 (frame format) and zstd. Registered once, on import of libs/kafka.
 *
 * A batch whose records cannot be decoded (corrupt compressed bytes, a codec id Kafka does not define,
 * records that do not parse after decompression) does not fail the fetch: its decompression yields one
 * record at the batch's last offset, marked with UndecodableBatchHeaders and holding the batch's raw bytes
 * (its header and its still compressed records), which the BatchConsumer dead-letters like an invalid message; the
 * offset then moves past the batch. kafkajs's record batch decoder (protocol/recordBatch/v0/decoder.js)
 * decodes exactly the batch's declared record count from what decompress returns, so the batch's other
 * records become fillers with an offset below any fetch position, which kafkajs's Batch filters out.
 */

/** Proves a marker was written by this process's decoder, not forged by a producer. */
export const UNDECODABLE_BATCH_NONCE = randomBytes(16).toString('hex');

/** Length of the v2 record batch header up to and including the record count (kafkajs reads it first). */
const BATCH_HEADER_BYTES = 61;
const MAGIC_AT = 16;
const LAST_OFFSET_DELTA_AT = 23;
const COUNT_AT = 57;
/** Fillers' offset delta: far below any fetch offset of the batch, so kafkajs drops them. */
const FILLER_OFFSET_DELTA = -0x80000000;
/** A declared record count above this is not a batch kafkajs could decode anyway (fillers are ~10 bytes). */
const MAX_RECORDS = 10_000_000;

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;

const gzipAsync = promisify(gzip);
const unzipAsync = promisify(unzip);
const zstdCompressAsync = promisify(zstdCompress);
const zstdDecompressAsync = promisify(zstdDecompress);

interface Codec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

/** Raw snappy, or xerial-framed snappy (magic, version, compatible version, then length-prefixed blocks). */
async function snappyDecompress(buffer: Buffer): Promise<Buffer> {
  if (buffer.length < XERIAL_HEADER_BYTES || !buffer.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)) {
    return (await snappyUncompress(buffer)) as Buffer;
  }
  const blocks: Buffer[] = [];
  let at = XERIAL_HEADER_BYTES;
  while (at < buffer.length) {
    if (at + 4 > buffer.length) throw new Error('truncated xerial snappy block length');
    const size = buffer.readInt32BE(at);
    at += 4;
    if (size < 0 || at + size > buffer.length) throw new Error('truncated xerial snappy block');
    blocks.push((await snappyUncompress(buffer.subarray(at, at + size))) as Buffer);
    at += size;
  }
  return Buffer.concat(blocks);
}

/** Xerial framing, as the Java client writes it (every consumer reads it; raw snappy is librdkafka's). */
async function snappyCompressXerial(buffer: Buffer): Promise<Buffer> {
  const block = await snappyCompress(buffer);
  const header = Buffer.alloc(XERIAL_HEADER_BYTES + 4);
  XERIAL_MAGIC.copy(header);
  header.writeInt32BE(1, 8);
  header.writeInt32BE(1, 12);
  header.writeInt32BE(block.length, 16);
  return Buffer.concat([header, block]);
}

const CODECS: Record<
  number,
  { name: string; compress: (b: Buffer) => Promise<Buffer>; decompress?: (b: Buffer) => Promise<Buffer> }
> = {
  [CompressionTypes.GZIP]: { name: 'gzip', compress: (b) => gzipAsync(b), decompress: (b) => unzipAsync(b) },
  [CompressionTypes.Snappy]: { name: 'snappy', compress: snappyCompressXerial, decompress: snappyDecompress },
  [CompressionTypes.LZ4]: { name: 'lz4', compress: (b) => compressFrame(b), decompress: (b) => decompressFrame(b) },
  [CompressionTypes.ZSTD]: {
    name: 'zstd',
    compress: (b) => zstdCompressAsync(b),
    decompress: (b) => zstdDecompressAsync(b),
  },
  // Ids the attributes' 3 codec bits can hold but Kafka does not define.
  5: { name: 'codec 5', compress: unknownCodec(5) },
  6: { name: 'codec 6', compress: unknownCodec(6) },
  7: { name: 'codec 7', compress: unknownCodec(7) },
};

function unknownCodec(id: number): () => Promise<Buffer> {
  return () => Promise.reject(new Error(`compression codec ${id} is not defined by Kafka`));
}

/**
 * Decompresses, then checks the records parse; on any failure returns the synthetic records that stand for
 * the undecodable batch (see above). Rethrows when the buffer is not a v2 batch's records (it then cannot
 * locate the batch header), which kafkajs reports as before.
 */
async function decompressSafely(name: string, decompress: ((b: Buffer) => Promise<Buffer>) | undefined, raw: Buffer) {
  const header = batchHeaderOf(raw);
  try {
    if (!decompress) throw new Error(`unknown compression codec (${name})`);
    const records = await decompress(raw);
    if (header) checkRecords(records, header.readInt32BE(COUNT_AT));
    return records;
  } catch (error) {
    if (!header) throw error;
    return syntheticRecords(header, raw, `${name}: ${(error as Error).message}`);
  }
}

/** The v2 batch header right before the records (kafkajs hands decompress a view of the fetch buffer). */
function batchHeaderOf(raw: Buffer): Buffer | null {
  if (raw.byteOffset < BATCH_HEADER_BYTES) return null;
  const header = Buffer.from(raw.buffer, raw.byteOffset - BATCH_HEADER_BYTES, BATCH_HEADER_BYTES);
  if (header.readInt8(MAGIC_AT) !== 2) return null;
  return header;
}

function checkRecords(records: Buffer, count: number): void {
  const decoder = new Decoder(records);
  for (let i = 0; i < count; i++) {
    const record = decoder.readVarIntBytes();
    if (!record) throw new Error(`record ${i} of ${count} is missing`);
    decodeRecord(new Decoder(record), { firstOffset: '0', firstTimestamp: '0' });
  }
}

function syntheticRecords(header: Buffer, raw: Buffer, reason: string): Buffer {
  const count = header.readInt32BE(COUNT_AT);
  if (count > MAX_RECORDS) throw new Error(`${reason}; and its record count ${count} is not plausible`);
  const encoder = new Encoder();
  const filler = encodeRecord({ offsetDelta: FILLER_OFFSET_DELTA, key: null, value: null, headers: {} }).buffer;
  for (let i = 0; i < count - 1; i++) encoder.writeBuffer(filler);
  encoder.writeBuffer(
    encodeRecord({
      offsetDelta: header.readInt32BE(LAST_OFFSET_DELTA_AT),
      key: null,
      value: Buffer.concat([header, raw]), // the whole batch as the broker stores it
      headers: {
        [UndecodableBatchHeaders.Reason]: reason.slice(0, 1000),
        [UndecodableBatchHeaders.Marker]: UNDECODABLE_BATCH_NONCE,
      },
    }).buffer,
  );
  return encoder.buffer;
}

let registered = false;

/** Installs the codecs on kafkajs's codec table (idempotent; done on import of libs/kafka). */
function registerKafkaCodecs(): void {
  if (registered) return;
  registered = true;
  const table = CompressionCodecs as unknown as Record<number, () => Codec>;
  for (const [id, { name, compress, decompress }] of Object.entries(CODECS)) {
    const codec: Codec = {
      compress: (encoder) => compress(encoder.buffer),
      decompress: (buffer) => decompressSafely(name, decompress, buffer),
    };
    table[Number(id)] = () => codec;
  }
}

registerKafkaCodecs();
