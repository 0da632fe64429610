import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import '@agentmeter/kafka'; // every Kafka codec on kafkajs (libs/kafka/src/codecs.ts)
import { topicName, Topics } from '@agentmeter/contracts';
import { generateWorkload, publishEvents } from '@agentmeter/testing';

/**
 * `make demo`: publishes a seeded workload to agent.events.v1 and writes its ground truth (expected
 * metrics per run) as JSON. Re-running with the same seed publishes the same events, which ingest
 * recognises as duplicates.
 */
async function main(): Promise<void> {
  const seed = Number(process.env.DEMO_SEED ?? 42);
  const out = process.env.DEMO_TRUTH_FILE ?? '.local/demo/ground-truth.json';
  // The first run fixes the workload's start time in .local/demo/anchor; later runs reuse it, so they
  // publish identical events (same ids and times) that ingest recognises as duplicates.
  const anchorFile = process.env.DEMO_ANCHOR_FILE ?? '.local/demo/anchor';
  mkdirSync(dirname(anchorFile), { recursive: true });
  if (!existsSync(anchorFile)) {
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    writeFileSync(anchorFile, new Date(hour - 2 * 3_600_000).toISOString());
  }
  const start = new Date(readFileSync(anchorFile, 'utf8').trim());
  const workload = generateWorkload({
    seed,
    tenants: Number(process.env.DEMO_TENANTS ?? 3),
    projectsPerTenant: Number(process.env.DEMO_PROJECTS ?? 2),
    runsPerProject: Number(process.env.DEMO_RUNS ?? 5),
    start,
    prefix: `demo${seed}`,
  });
  const kafka = new Kafka({
    clientId: 'agentmeter-demo',
    brokers: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
    logLevel: logLevel.WARN,
  });
  const topic = topicName(process.env.KAFKA_TOPIC_PREFIX ?? '', Topics.AgentEvents);
  await publishEvents(kafka, topic, workload.events);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(workload.truth, null, 2)}\n`);
  console.log(`published ${workload.events.length} events for ${workload.truth.runs.length} runs to ${topic}`);
  console.log(`ground truth: ${out}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
