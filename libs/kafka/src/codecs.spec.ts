import { CompressionTypes } from 'kafkajs';
import { decodeKafkaMessage, UndecodableBatchHeaders } from '@agentmeter/contracts';
import { UNDECODABLE_BATCH_NONCE } from './codecs';

/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's batch encoder/decoder and Batch are internal */
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
  RecordBatch(options: Record<string, unknown>): Promise<{ buffer: Buffer }>;
};
const RecordBatchDecoder = require('kafkajs/src/protocol/recordBatch/v0/decoder') as (decoder: unknown) => Promise<{
  records: Array<{ offset: string; key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer> }>;
}>;
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (record: Record<string, unknown>) => unknown;
const Decoder = require('kafkajs/src/protocol/decoder') as new (buffer: Buffer) => unknown;
const Batch = require('kafkajs/src/consumer/batch') as new (
  topic: string,
  fetchedOffset: string,
  data: { partition: number; highWatermark: string; messages: unknown[]; abortedTransactions: unknown[] },
) => { messages: Array<{ offset: string; value: Buffer | null; headers: Record<string, Buffer> }> };
/* eslint-enable @typescript-eslint/no-require-imports */

const FIRST_OFFSET = 1000n;
const RECORDS_AT = 61;

/** A v2 record batch as the broker serves it (firstOffset, length, then the batch). */
async function batchOf(compression: number, count: number): Promise<Buffer> {
  const records = Array.from({ length: count }, (_, i) =>
    Record({ offsetDelta: i, key: Buffer.from(`run-${i}`), value: Buffer.from(`{"n":${i}}`), headers: {} }),
  );
  const batch = await RecordBatch({
    compression,
    firstOffset: Number(FIRST_OFFSET),
    records,
    lastOffsetDelta: count - 1,
  });
  return batch.buffer;
}

/** What a consumer sees of the batch: kafkajs's decoder, then its Batch (which drops offsets below the fetch). */
async function consume(batch: Buffer) {
  // The fetch response holds the batch somewhere inside a larger buffer.
  const response = Buffer.concat([Buffer.alloc(100, 7), batch]).subarray(100);
  const { records } = await RecordBatchDecoder(new Decoder(response));
  return new Batch('t', FIRST_OFFSET.toString(), {
    partition: 0,
    highWatermark: '2000',
    messages: records,
    abortedTransactions: [],
  }).messages;
}

describe('codecs', () => {
  it.each([
    ['gzip', CompressionTypes.GZIP],
    ['snappy', CompressionTypes.Snappy],
    ['lz4', CompressionTypes.LZ4],
    ['zstd', CompressionTypes.ZSTD],
  ])('round-trips %s through kafkajs', async (_name, codec) => {
    const messages = await consume(await batchOf(codec, 5));
    expect(messages.map((m) => m.value!.toString())).toEqual([0, 1, 2, 3, 4].map((n) => `{"n":${n}}`));
    expect(messages.map((m) => m.offset)).toEqual(['1000', '1001', '1002', '1003', '1004']);
  });

  it.each([
    ['gzip', CompressionTypes.GZIP],
    ['snappy', CompressionTypes.Snappy],
    ['lz4', CompressionTypes.LZ4],
    ['zstd', CompressionTypes.ZSTD],
  ])(
    'turns a corrupt %s batch into one marked record at its last offset holding the raw batch',
    async (name, codec) => {
      const batch = await batchOf(codec, 5);
      const raw = Buffer.from(batch.subarray(RECORDS_AT));
      batch.fill(0x5a, RECORDS_AT, RECORDS_AT + Math.min(24, batch.length - RECORDS_AT));
      expect(batch.subarray(RECORDS_AT).equals(raw)).toBe(false);
      const messages = await consume(batch);
      expect(messages).toHaveLength(1);
      expect(messages[0]!.offset).toBe('1004');
      expect(messages[0]!.value!.equals(batch)).toBe(true); // the whole batch, header included
      expect(messages[0]!.headers[UndecodableBatchHeaders.Marker]!.toString()).toBe(UNDECODABLE_BATCH_NONCE);
      const decoded = decodeKafkaMessage({ key: null, value: messages[0]!.value, headers: messages[0]!.headers });
      expect(decoded).toEqual({
        ok: false,
        reason: expect.stringMatching(new RegExp(`^undecodable_batch: ${name}: `)),
      });
    },
  );

  it('turns a batch with a codec id Kafka does not define into one marked record', async () => {
    const batch = await batchOf(CompressionTypes.GZIP, 3);
    const ATTRIBUTES_AT = 21; // after firstOffset, length, leader epoch, magic and crc
    batch.writeInt16BE((batch.readInt16BE(ATTRIBUTES_AT) & ~0x07) | 6, ATTRIBUTES_AT);
    const messages = await consume(batch);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.offset).toBe('1002');
    expect(messages[0]!.headers[UndecodableBatchHeaders.Reason]!.toString()).toMatch(/codec 6/);
  });

  it('turns records that do not parse after decompression into one marked record', async () => {
    // Five records declared, three written: the decompressed bytes end early.
    const short = await batchOf(CompressionTypes.ZSTD, 3);
    const COUNT_AT = RECORDS_AT - 4; // the record count is the last field before the records
    short.writeInt32BE(5, COUNT_AT);
    const messages = await consume(short);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.headers[UndecodableBatchHeaders.Reason]!.toString()).toMatch(/^zstd: /);
  });
});
