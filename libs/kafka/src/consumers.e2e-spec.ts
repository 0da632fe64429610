import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CompressionTypes, Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { Client } from 'pg';
import { DlqHeaders, topicName, Topics } from '@agentmeter/contracts';
import {
  createTestDatabase,
  createTestTopics,
  eventually,
  readAll,
  startPrivateKafka,
  startService,
  testEnvironment,
  waitForGroupCaughtUp,
  type PrivateKafka,
  type RunningService,
  type TestDatabase,
} from '@agentmeter/testing';
import './codecs';

const run = promisify(execFile);
// eslint-disable-next-line @typescript-eslint/no-require-imports -- kafkajs's CRC-32C, untyped
const crc32C = require('kafkajs/src/protocol/recordBatch/crc32C') as (buffer: Buffer) => number;

/**
 * The three consumers of agent.events.v1 (ingest, cost-cap, alert) as processes against a Kafka broker of
 * this test's own: every codec from kcat (librdkafka) and kafkajs is stored, accounted and evaluated; a
 * record batch that cannot be decoded is dead-lettered and its partition moves on; a broker kill -9 and
 * restart turns readiness to 503 and back, and leaves every group at full membership, no process exited
 * and every sum exact.
 */
describe('consumers of agent.events.v1 on a broker of their own', () => {
  const env = testEnvironment();
  const suffix = randomBytes(3).toString('hex');
  const groups = {
    ingest: `${env.runId}-ingest-${suffix}`,
    costCap: `${env.runId}-cost-cap-${suffix}`,
    alert: `${env.runId}-alert-${suffix}`,
  };
  let broker: PrivateKafka;
  let kafka: Kafka;
  let db: TestDatabase;
  let sql: Client;
  let prefix: string;
  let eventsTopic: string;
  let dlqTopic: string;
  const services: RunningService[] = [];
  /** What every run should add up to: micro-USD of external charges and validation failures. */
  const expected = new Map<string, { tenant: string; micros: bigint; failures: number }>();
  let corruptBatchEnd = 0n;

  const tenant = `t-${suffix}`;
  let sequence = 0;
  function events(runId: string, charges: number[], failures: number): Array<{ key: string; value: string }> {
    const now = new Date().toISOString();
    const base = { specversion: '1.0', source: `e2e/${suffix}`, time: now, subject: tenant };
    const data = { tenant_id: tenant, project_id: 'p', run_id: runId };
    const out = [{ ...base, id: `e${++sequence}`, type: 'run_started', data }];
    for (const micros of charges) {
      out.push({
        ...base,
        id: `e${++sequence}`,
        type: 'external_charge',
        data: { ...data, vendor: 'v', amount_usd: (micros / 1e6).toFixed(6) },
      } as (typeof out)[number]);
    }
    for (let i = 0; i < failures; i++) {
      out.push({
        ...base,
        id: `e${++sequence}`,
        type: 'validation_failed',
        data: { ...data, phase: 'validate', role: 'validator', reason: `r${i}` },
      } as (typeof out)[number]);
    }
    const entry = expected.get(runId) ?? { tenant, micros: 0n, failures: 0 };
    entry.micros += charges.reduce((sum, micros) => sum + BigInt(micros), 0n);
    entry.failures += failures;
    expected.set(runId, entry);
    return out.map((event) => ({ key: runId, value: JSON.stringify(event) }));
  }

  function producer(): Producer {
    // What docs/events.md asks of producers: idempotent, acks from all replicas, retries outlasting a restart.
    return kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: 40, initialRetryTime: 300, maxRetryTime: 3_000 },
    });
  }

  async function publish(
    messages: Array<{ key: string; value: string; partition?: number }>,
    compression = CompressionTypes.None,
  ) {
    const p = producer();
    await p.connect();
    try {
      await p.send({ topic: eventsTopic, acks: -1, compression, messages });
    } finally {
      await p.disconnect();
    }
  }

  async function kcat(codec: string, messages: Array<{ key: string; value: string }>) {
    const child = run(
      'kcat',
      ['-P', '-b', broker.brokers.join(','), '-t', eventsTopic, '-z', codec, '-K', '\t', '-X', 'acks=all'],
      { timeout: 60_000 },
    );
    child.child.stdin!.end(messages.map((m) => `${m.key}\t${m.value}\n`).join(''));
    await child;
  }

  /** Each service's view of each run: ingest's stored charges, cost-cap's ledger, alert's samples. */
  async function expectAllSumsExact(): Promise<void> {
    const want = [...expected.entries()]
      .map(([runId, e]) => ({ run_id: runId, micros: e.micros.toString(), failures: e.failures }))
      .sort((a, b) => a.run_id.localeCompare(b.run_id));
    const stored = await sql.query(
      `SELECT r.run_id,
              COALESCE((SELECT sum(amount_micros) FROM external_charges c WHERE c.tenant_id = r.tenant_id AND c.run_id = r.run_id), 0)::text AS micros,
              (SELECT count(*)::int FROM events e WHERE e.tenant_id = r.tenant_id AND e.run_id = r.run_id AND e.type = 'validation_failed') AS failures
         FROM runs r WHERE r.tenant_id = $1 ORDER BY r.run_id`,
      [tenant],
    );
    expect(stored.rows.sort((a, b) => a.run_id.localeCompare(b.run_id))).toEqual(want);
    const ledger = await sql.query(
      `SELECT run_id, sum(cost_micros)::text AS micros FROM spend_ledger WHERE tenant_id = $1 GROUP BY run_id`,
      [tenant],
    );
    expect(ledger.rows.sort((a, b) => a.run_id.localeCompare(b.run_id))).toEqual(
      want.filter((w) => w.micros !== '0').map(({ run_id, micros }) => ({ run_id, micros })),
    );
    const samples = await sql.query(
      `SELECT scope, count(*)::int AS failures FROM alert_samples WHERE tenant_id = $1 GROUP BY scope`,
      [tenant],
    );
    expect(samples.rows.sort((a, b) => a.scope.localeCompare(b.scope))).toEqual(
      want
        .filter((w) => w.failures > 0)
        .map(({ run_id, failures }) => ({ scope: `run:${run_id}`, failures }))
        .sort((a, b) => a.scope.localeCompare(b.scope)),
    );
  }

  async function caughtUp(): Promise<void> {
    for (const group of Object.values(groups)) await waitForGroupCaughtUp(kafka, group, eventsTopic, 120_000);
  }

  /** Progress of the long scenario, on stderr with E2E_DEBUG (a timeout then says which step waited). */
  function step(name: string): void {
    if (process.env.E2E_DEBUG) process.stderr.write(`[consumers e2e] ${new Date().toISOString()} ${name}\n`);
  }

  async function readiness(service: RunningService): Promise<number> {
    return (await fetch(`${service.url}/health/ready`)).status;
  }

  beforeAll(async () => {
    broker = await startPrivateKafka();
    kafka = new Kafka({
      clientId: 'agentmeter-e2e',
      brokers: broker.brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 40, initialRetryTime: 300, maxRetryTime: 3_000 },
    });
    prefix = await createTestTopics(kafka);
    eventsTopic = topicName(prefix, Topics.AgentEvents);
    dlqTopic = topicName(prefix, Topics.AgentEventsDlq);
    db = await createTestDatabase();
    sql = new Client({ connectionString: db.url });
    await sql.connect();

    // Partition 0 starts with a zstd batch whose compressed bytes are then damaged on disk (the broker
    // checked them when they were produced; it does not when serving them): it reaches every consumer.
    const lost = events(`run-corrupt-${suffix}`, [1_000, 2_000], 1).map((m) => ({ ...m, partition: 0 }));
    expected.delete(`run-corrupt-${suffix}`);
    await publish(lost, CompressionTypes.ZSTD);
    corruptBatchEnd = BigInt(lost.length);
    const dir = join(broker.dataDir, `${eventsTopic}-0`);
    const segment = join(
      dir,
      readdirSync(dir).find((name) => name.endsWith('.log'))!,
    );
    // The first 16 bytes of the batch's compressed records, with the batch's CRC made right again: the
    // broker checks CRCs when it recovers its log after the kill -9 below, and would truncate the partition.
    const batch = readFileSync(segment).subarray(0, 12);
    const length = batch.readInt32BE(8);
    const whole = Buffer.from(readFileSync(segment).subarray(0, 12 + length));
    whole.fill(0x5a, 61, 77);
    whole.writeUInt32BE(crc32C(whole.subarray(21)) >>> 0, 17);
    const fd = openSync(segment, 'r+');
    writeSync(fd, whole, 0, whole.length, 0);
    closeSync(fd);

    const shared = {
      DATABASE_URL: db.url,
      KAFKA_BROKERS: broker.brokers.join(','),
      KAFKA_TOPIC_PREFIX: prefix,
      REDIS_KEY_PREFIX: `${env.redisPrefix}kafka-${suffix}:`,
      LOG_LEVEL: 'error',
    };
    services.push(
      ...(await Promise.all([
        startService('ingest', { ...shared, INGEST_GROUP_ID: groups.ingest }),
        startService('cost-cap', {
          ...shared,
          COST_CAP_GROUP_ID: groups.costCap,
          COST_CAP_API_TOKEN: randomBytes(16).toString('hex'),
        }),
        startService('alert', { ...shared, ALERT_GROUP_ID: groups.alert }),
      ])),
    );
  }, 240_000);

  afterAll(async () => {
    if (process.env.E2E_DEBUG) for (const service of services) console.log(service.name, service.output());
    await Promise.all(services.map((service) => service.stop()));
    await sql?.end();
    await db?.drop();
    await broker?.destroy();
  });

  it('dead-letters a record batch that cannot be decoded, raw bytes kept, and moves its partition on', async () => {
    const after = events(`run-after-${suffix}`, [3_000], 1).map((m) => ({ ...m, partition: 0 }));
    await publish(after);
    await caughtUp();
    const dead = await readAll(kafka, dlqTopic);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.headers[DlqHeaders.Reason]).toMatch(/^undecodable_batch: zstd: /);
    expect(dead[0]!.headers[DlqHeaders.SourcePartition]).toBe('0');
    expect(BigInt(dead[0]!.headers[DlqHeaders.SourceOffset]!)).toBe(corruptBatchEnd - 1n);
    expect(dead[0]!.headers['x-agentmeter-undecodable-marker']).toBeUndefined();
    await eventually(expectAllSumsExact, 60_000);
    for (const service of services) expect(service.process.exitCode).toBeNull();
  });

  it('dead-letters invalid UTF-8 and a key that is not the run id; cost-cap and alert skip them', async () => {
    const [started, charge] = events(`run-bad-${suffix}`, [50_000], 0);
    expected.delete(`run-bad-${suffix}`);
    const bytes = Buffer.from(charge!.value.replace('"vendor":"v"', '"vendor":"v\u00e9"'));
    bytes[bytes.indexOf(Buffer.from('\u00e9')) + 1] = 0x41; // a UTF-8 lead byte without its continuation
    const mismatched = events(`run-misskeyed-${suffix}`, [60_000], 0);
    expected.delete(`run-misskeyed-${suffix}`);
    const p = producer();
    await p.connect();
    try {
      await p.send({
        topic: eventsTopic,
        acks: -1,
        messages: [
          { key: started!.key, value: bytes },
          ...mismatched.map((m) => ({ key: `not-${m.key}`, value: m.value })),
        ],
      });
    } finally {
      await p.disconnect();
    }
    await caughtUp();
    const reasons = (await readAll(kafka, dlqTopic)).map((d) => d.headers[DlqHeaders.Reason]!.split(':')[0]).sort();
    expect(reasons).toEqual(['invalid_utf8', 'key_mismatch', 'key_mismatch', 'undecodable_batch']);
    await expectAllSumsExact(); // nothing of either run anywhere
  });

  it('stores, accounts and evaluates every codec, from kcat (librdkafka) and from kafkajs', async () => {
    let amount = 10_000;
    for (const codec of ['gzip', 'snappy', 'lz4', 'zstd']) {
      await kcat(codec, events(`run-kcat-${codec}-${suffix}`, [amount++, amount++], 2));
    }
    for (const [codec, type] of Object.entries({
      gzip: CompressionTypes.GZIP,
      snappy: CompressionTypes.Snappy,
      lz4: CompressionTypes.LZ4,
      zstd: CompressionTypes.ZSTD,
    })) {
      await publish(events(`run-kafkajs-${codec}-${suffix}`, [amount++, amount++], 2), type);
    }
    await caughtUp();
    await eventually(expectAllSumsExact, 60_000);
    expect((await readAll(kafka, dlqTopic)).length).toBe(4); // nothing more than before
  });

  it("dead-letters another tenant's events for a run id it does not own; the owner's run is untouched", async () => {
    const runId = `run-owned-${suffix}`;
    await publish(events(runId, [7_000], 1));
    await caughtUp();
    await eventually(expectAllSumsExact, 60_000);
    const intruder = `intruder-${suffix}`;
    const now = new Date().toISOString();
    const base = { specversion: '1.0', source: `e2e/${suffix}/intruder`, time: now, subject: intruder };
    const data = { tenant_id: intruder, project_id: 'p', run_id: runId };
    const hostile = [
      { ...base, id: 'i1', type: 'run_started', data },
      { ...base, id: 'i2', type: 'external_charge', data: { ...data, vendor: 'v', amount_usd: '5.000000' } },
      { ...base, id: 'i3', type: 'validation_failed', data: { ...data, phase: 'x', role: 'y', reason: 'z' } },
      { ...base, id: 'i4', type: 'run_finished', data },
    ].map((event) => ({ key: runId, value: JSON.stringify(event) }));
    await publish(hostile);
    await caughtUp();

    const dead = (await readAll(kafka, dlqTopic)).filter((d) => d.headers[DlqHeaders.Reason]?.startsWith('run_owned'));
    expect(dead.map((d) => JSON.parse(d.value!).id).sort()).toEqual(['i1', 'i2', 'i3', 'i4']);
    // ingest: nothing stored for the intruder, the run exists once, still running, with the owner's sums.
    const runs = await sql.query(`SELECT tenant_id, status FROM runs WHERE run_id = $1`, [runId]);
    expect(runs.rows).toEqual([{ tenant_id: tenant, status: 'running' }]);
    expect((await sql.query(`SELECT 1 FROM events WHERE tenant_id = $1`, [intruder])).rowCount).toBe(0);
    await expectAllSumsExact();
    // cost-cap and alert key their state by tenant: the intruder only ever touches its own (tenant, run).
    const ledger = await sql.query(`SELECT DISTINCT tenant_id FROM spend_ledger WHERE run_id = $1 ORDER BY 1`, [runId]);
    expect(ledger.rows.map((r) => r.tenant_id).sort()).toEqual([intruder, tenant].sort());
  });

  it('survives a broker kill -9 and restart: readiness 503 meanwhile, then full groups and exact sums', async () => {
    await publish(events(`run-before-kill-${suffix}`, [100, 200], 1));
    const outlasting = producer();
    await outlasting.connect();
    await broker.kill();
    step('broker killed');
    // Published while the broker is down: the producer's retries outlast the restart.
    const during = outlasting
      .send({
        topic: eventsTopic,
        acks: -1,
        compression: CompressionTypes.LZ4,
        messages: events(`run-during-kill-${suffix}`, [300, 400, 500], 2),
      })
      .finally(() => outlasting.disconnect());
    during.catch(() => undefined); // awaited below, after the restart
    for (const service of services) {
      await eventually(async () => expect(await readiness(service)).toBe(503), 60_000, 250);
    }
    step('every service not ready');
    await broker.start();
    step('broker restarted');
    await during;
    step('publish during the outage done');
    await publish(events(`run-after-restart-${suffix}`, [600], 1), CompressionTypes.Snappy);
    for (const service of services) {
      await eventually(async () => expect(await readiness(service)).toBe(200), 120_000, 250);
    }
    step('every service ready');
    const admin = kafka.admin();
    await admin.connect();
    try {
      await eventually(async () => {
        const { groups: described } = await admin.describeGroups([groups.ingest, groups.costCap, groups.alert]);
        expect(described.map((g) => [g.groupId, g.state, g.members.length])).toEqual([
          [groups.ingest, 'Stable', 3],
          [groups.costCap, 'Stable', 1],
          [groups.alert, 'Stable', 1],
        ]);
      }, 120_000);
    } finally {
      await admin.disconnect();
    }
    step('groups at full membership');
    await caughtUp();
    step('caught up');
    await eventually(expectAllSumsExact, 60_000);
    for (const service of services) expect(service.process.exitCode).toBeNull();
  }, 420_000); // a broker restart (JVM start and log recovery) is slow on a busy machine
});
