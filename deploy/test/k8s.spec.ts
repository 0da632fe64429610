import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ALERT_DELIVERY_QUEUES, topicName, Topics } from '@agentmeter/contracts';
import { filesUnder, read, readYaml, readYamlDocuments, ROOT, serviceConfigs, type ServiceConfig } from './repository';

/**
 * deploy/k8s parses and agrees with the code: images and SERVICE values the Dockerfile can run, ports and
 * environment variables the services' config.ts read, secrets and config maps that exist, probes on the health
 * endpoints, a disruption budget per workload, and autoscalers that watch the real consumer group, topic and
 * BullMQ queues.
 */

const K8S = 'deploy/k8s';

interface Metadata {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Resource {
  apiVersion: string;
  kind: string;
  metadata: Metadata;
  spec?: unknown;
  data?: Record<string, string>;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
    fieldRef?: unknown;
  };
}
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  env?: EnvVar[];
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean };
}
interface PodTemplate {
  metadata: Metadata;
  spec: { containers: Container[]; securityContext?: { runAsNonRoot?: boolean } };
}
interface Workload extends Resource {
  spec: { replicas?: number; selector: { matchLabels: Record<string, string> }; template: PodTemplate };
}
interface Job extends Resource {
  spec: { template: PodTemplate };
}
interface Service extends Resource {
  spec: { selector: Record<string, string>; ports: Array<{ port: number; targetPort: string | number }> };
}
interface Pdb extends Resource {
  spec: { selector: { matchLabels: Record<string, string> }; minAvailable?: number; maxUnavailable?: number };
}
interface Hpa extends Resource {
  spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number; maxReplicas: number };
}
interface ScaledObject extends Resource {
  spec: {
    scaleTargetRef: { name: string };
    minReplicaCount: number;
    maxReplicaCount: number;
    triggers: Array<{ type: string; metadata: Record<string, string>; authenticationRef?: { name: string } }>;
  };
}
interface TriggerAuthentication extends Resource {
  spec: { secretTargetRef: Array<{ parameter: string; name: string; key: string }> };
}
interface Kustomization {
  resources: string[];
  images: Array<{ name: string; newName?: string; newTag?: string }>;
  secretGenerator: Array<{ name: string; envs: string[] }>;
}

const kustomization = readYaml<Kustomization>(`${K8S}/kustomization.yaml`);
const resources = kustomization.resources.flatMap((file) => readYamlDocuments(`${K8S}/${file}`) as Resource[]);
const ofKind = <T extends Resource>(kind: string): T[] => resources.filter((r) => r.kind === kind) as T[];

const workloads = ofKind<Workload>('Deployment');
const jobs = ofKind<Job>('Job');
const configMaps = new Map(ofKind('ConfigMap').map((c) => [c.metadata.name, c.data ?? {}]));

/** The Secret the secretGenerator makes, with the keys of its committed example file. */
const secrets = new Map(
  kustomization.secretGenerator.map((generator) => {
    const keys = generator.envs.flatMap((envFile) =>
      read(`${K8S}/${envFile}.example`)
        .split('\n')
        .filter((line) => /^[A-Z][A-Z0-9_]*=/.test(line))
        .map((line) => line.split('=')[0]!),
    );
    return [generator.name, new Set(keys)];
  }),
);

const configs = serviceConfigs().filter((c) => c.file.endsWith('/src/config.ts'));
const configOf = (service: string): ServiceConfig | undefined => configs.find((c) => c.service === service);

/** Variables the Node runtime, the image or the OpenTelemetry SDK read, outside the services' config.ts. */
const RUNTIME_VARIABLES = new Set([
  'SERVICE', // deploy/docker/Dockerfile picks the process with it
  'NODE_OPTIONS',
  'NODE_ENV',
  ...[...read('libs/telemetry/src/tracing.ts').matchAll(/env\.(OTEL_[A-Z_]+)/g)].map((m) => m[1]!),
  // Standard SDK variables (read by @opentelemetry/sdk-node itself).
  'OTEL_RESOURCE_ATTRIBUTES',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
  'OTEL_EXPORTER_OTLP_HEADERS',
]);

/** What `SERVICE=x` runs in the image (deploy/docker/Dockerfile's entrypoint). */
const dockerfile = read('deploy/docker/Dockerfile');
const dockerTools = /in ([a-z-]+(?:\|[a-z-]+)*)\) entry=dist\/tools/.exec(dockerfile)?.[1]?.split('|') ?? [];
const buildScript = (JSON.parse(read('package.json')) as { scripts: { build: string } }).scripts.build;
function entryOf(service: string): string {
  return dockerTools.includes(service) ? `tools/src/${service}.ts` : `services/${service}/src/main.ts`;
}

const containerOf = (template: PodTemplate): Container => template.spec.containers[0]!;
const envValue = (container: Container, name: string): string | undefined => {
  const explicit = container.env?.find((e) => e.name === name)?.value;
  if (explicit !== undefined) return explicit;
  for (const from of container.envFrom ?? []) {
    const value = from.configMapRef ? configMaps.get(from.configMapRef.name)?.[name] : undefined;
    if (value !== undefined) return value;
  }
  return undefined;
};
/** Every variable the container gets, and where from. */
function environmentOf(container: Container): Map<string, string> {
  const names = new Map<string, string>();
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef)
      for (const key of Object.keys(configMaps.get(from.configMapRef.name) ?? {})) names.set(key, 'configmap');
    if (from.secretRef) for (const key of secrets.get(from.secretRef.name) ?? []) names.set(key, 'secret');
  }
  for (const env of container.env ?? []) names.set(env.name, 'env');
  return names;
}

describe('deploy/k8s', () => {
  it('lists every manifest in kustomization.yaml, and each parses', () => {
    const files = filesUnder(K8S, (name) => name.endsWith('.yaml'))
      .map((f) => f.slice(K8S.length + 1))
      .filter((f) => !f.includes('/') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files);
    for (const resource of resources) {
      expect(resource).toMatchObject({ apiVersion: expect.any(String), kind: expect.any(String) });
      expect(resource.metadata.name).toMatch(/^[a-z0-9-]+$/);
    }
  });

  it('has a Deployment per service and per worker, and the migration Job', () => {
    const services = configs.map((c) => c.service).sort();
    expect(services).toEqual(expect.arrayContaining(['alert', 'alert-worker', 'cost-cap', 'ingest', 'query']));
    expect(workloads.map((w) => envValue(containerOf(w.spec.template), 'SERVICE')).sort()).toEqual(services);
    expect(jobs.map((j) => envValue(containerOf(j.spec.template), 'SERVICE'))).toEqual(['migrate']);
  });

  it('runs the one image of deploy/docker/Dockerfile with a SERVICE it knows', () => {
    expect(dockerTools).toContain('migrate');
    const image = kustomization.images.find((i) => i.name === 'agentmeter');
    expect(image?.newName).toBeTruthy();
    for (const resource of [...workloads, ...jobs]) {
      const container = containerOf(resource.spec.template);
      expect(container.image).toBe('agentmeter');
      const service = envValue(container, 'SERVICE')!;
      expect([resource.metadata.name, existsSync(join(ROOT, entryOf(service)))]).toEqual([
        resource.metadata.name,
        true,
      ]);
      // ... and the image build (`npm run build`) compiles it.
      const project = dockerTools.includes(service) ? 'tools' : service;
      expect([resource.metadata.name, buildScript.split('&&').map((s) => s.trim())]).toEqual([
        resource.metadata.name,
        expect.arrayContaining([`nest build ${project}`]),
      ]);
    }
  });

  it('gives each workload only variables its config.ts reads (or the runtime does)', () => {
    for (const workload of workloads) {
      const container = containerOf(workload.spec.template);
      const config = configOf(envValue(container, 'SERVICE')!)!;
      const unknown = [...environmentOf(container)]
        .filter(([name, from]) => from === 'env' && !config.keys.has(name) && !RUNTIME_VARIABLES.has(name))
        .map(([name]) => name);
      expect([workload.metadata.name, unknown]).toEqual([workload.metadata.name, []]);
    }
  });

  it('shares only config map keys that some service reads', () => {
    const everyKey = new Set([...configs.flatMap((c) => [...c.keys]), ...RUNTIME_VARIABLES]);
    for (const [name, data] of configMaps) {
      expect([name, Object.keys(data).filter((key) => !everyKey.has(key))]).toEqual([name, []]);
    }
  });

  it('sets every variable a service cannot start without', () => {
    for (const workload of workloads) {
      const container = containerOf(workload.spec.template);
      const config = configOf(envValue(container, 'SERVICE')!)!;
      const missing = [...config.required].filter((key) => !environmentOf(container).has(key));
      expect([workload.metadata.name, missing]).toEqual([workload.metadata.name, []]);
    }
    const query = containerOf(workloads.find((w) => w.metadata.name === 'query')!.spec.template);
    expect(['AUTH_JWT_SECRET', 'AUTH_JWKS_URL'].some((key) => environmentOf(query).has(key))).toBe(true);
  });

  it('refers only to secrets and config maps that exist, with keys they have', () => {
    for (const resource of [...workloads, ...jobs]) {
      for (const env of containerOf(resource.spec.template).env ?? []) {
        const secret = env.valueFrom?.secretKeyRef;
        if (secret) expect([env.name, secrets.get(secret.name)?.has(secret.key)]).toEqual([env.name, true]);
        const map = env.valueFrom?.configMapKeyRef;
        if (map) expect([env.name, configMaps.get(map.name)?.[map.key] !== undefined]).toEqual([env.name, true]);
      }
      for (const from of containerOf(resource.spec.template).envFrom ?? []) {
        if (from.configMapRef) expect(configMaps.has(from.configMapRef.name)).toBe(true);
        if (from.secretRef) expect(secrets.has(from.secretRef.name)).toBe(true);
      }
    }
  });

  it('listens on the port the service is configured for, with probes on the health endpoints', () => {
    for (const workload of workloads) {
      const container = containerOf(workload.spec.template);
      const config = configOf(envValue(container, 'SERVICE')!)!;
      const port = Number(envValue(container, 'PORT') ?? config.port);
      expect([workload.metadata.name, container.ports]).toEqual([
        workload.metadata.name,
        [{ name: 'http', containerPort: port }],
      ]);
      expect(workload.spec.template.metadata.annotations).toMatchObject({ 'prometheus.io/port': String(port) });
      expect(container.livenessProbe?.httpGet).toEqual({ path: '/health', port: 'http' });
      expect(container.startupProbe?.httpGet).toEqual({ path: '/health', port: 'http' });
      expect(container.readinessProbe?.httpGet).toEqual({ path: '/health/ready', port: 'http' });
    }
  });

  it('sets resources and runs as non-root without privilege escalation', () => {
    for (const resource of [...workloads, ...jobs]) {
      const container = containerOf(resource.spec.template);
      expect(container.resources?.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
      expect(container.resources?.limits?.memory).toEqual(expect.any(String));
      expect(resource.spec.template.spec.securityContext?.runAsNonRoot).toBe(true);
      expect(container.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
      });
    }
  });

  it('selects each workload with a Service on its port and a PodDisruptionBudget', () => {
    const services = ofKind<Service>('Service');
    const pdbs = ofKind<Pdb>('PodDisruptionBudget');
    for (const workload of workloads) {
      const selector = workload.spec.selector.matchLabels;
      expect(workload.spec.template.metadata.labels).toMatchObject(selector);
      const port = containerOf(workload.spec.template).ports![0]!.containerPort;
      const service = services.find((s) => JSON.stringify(s.spec.selector) === JSON.stringify(selector));
      expect([workload.metadata.name, service?.spec.ports]).toEqual([
        workload.metadata.name,
        [expect.objectContaining({ port, targetPort: 'http' })],
      ]);
      const pdb = pdbs.find((p) => JSON.stringify(p.spec.selector.matchLabels) === JSON.stringify(selector));
      expect([workload.metadata.name, Boolean(pdb)]).toEqual([workload.metadata.name, true]);
    }
  });

  it('scales query with an HPA of at least two replicas', () => {
    const hpas = ofKind<Hpa>('HorizontalPodAutoscaler');
    expect(hpas.map((h) => h.spec.scaleTargetRef)).toEqual([
      { apiVersion: 'apps/v1', kind: 'Deployment', name: 'query' },
    ]);
    expect(hpas[0]!.spec.minReplicas).toBeGreaterThanOrEqual(2);
  });

  it('scales ingest with KEDA on the lag of its own consumer group and topic', () => {
    const scaled = ofKind<ScaledObject>('ScaledObject').find((s) => s.spec.scaleTargetRef.name === 'ingest')!;
    const ingest = containerOf(workloads.find((w) => w.metadata.name === 'ingest')!.spec.template);
    const kafka = scaled.spec.triggers.find((t) => t.type === 'kafka')!.metadata;
    expect(kafka.consumerGroup).toBe(envValue(ingest, 'INGEST_GROUP_ID'));
    expect(kafka.topic).toBe(topicName(envValue(ingest, 'KAFKA_TOPIC_PREFIX') ?? '', Topics.AgentEvents));
    expect(kafka.bootstrapServers).toBe(envValue(ingest, 'KAFKA_BROKERS'));
    expect(kafka.allowIdleConsumers).toBe('false');
    expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(1); // ingest also serves OTLP over HTTP
  });

  it('scales alert-worker with KEDA on the length of every delivery queue', () => {
    const scaled = ofKind<ScaledObject>('ScaledObject').find((s) => s.spec.scaleTargetRef.name === 'alert-worker')!;
    const worker = containerOf(workloads.find((w) => w.metadata.name === 'alert-worker')!.spec.template);
    const prefix = envValue(worker, 'REDIS_KEY_PREFIX');
    expect(prefix).toBeDefined();
    const redis = scaled.spec.triggers.filter((t) => t.type === 'redis');
    expect(redis.map((t) => t.metadata.listName).sort()).toEqual(
      Object.values(ALERT_DELIVERY_QUEUES)
        .map((queue) => `${prefix}bull:${queue}:wait`)
        .sort(),
    );
    // The scaler reads the Redis the worker uses.
    const example = read(`${K8S}/secrets.env.example`);
    const redisUrl = new URL(/^REDIS_URL=(.*)$/m.exec(example)![1]!);
    const auths = new Map(ofKind<TriggerAuthentication>('TriggerAuthentication').map((a) => [a.metadata.name, a]));
    for (const trigger of redis) {
      expect(trigger.metadata.address).toBe(`${redisUrl.hostname}:${redisUrl.port}`);
      const auth = auths.get(trigger.authenticationRef!.name)!;
      for (const ref of auth.spec.secretTargetRef) expect(secrets.get(ref.name)?.has(ref.key)).toBe(true);
    }
  });

  it('keeps real credentials out of git', () => {
    expect(read(`${K8S}/.gitignore`).split('\n')).toContain('secrets.env');
    for (const keys of secrets.values()) expect(keys.size).toBeGreaterThan(0);
  });
});

describe('deploy/k8s/monitoring', () => {
  it('labels scraped pods like docker-compose.observability.yml does (job agentmeter, service)', () => {
    const [monitor] = readYamlDocuments(`${K8S}/monitoring/podmonitor.yaml`) as Array<{
      spec: { podMetricsEndpoints: Array<{ port: string; relabelings: Array<{ targetLabel: string }> }> };
    }>;
    const endpoint = monitor!.spec.podMetricsEndpoints[0]!;
    expect(endpoint.port).toBe('http');
    expect(endpoint.relabelings.map((r) => r.targetLabel)).toEqual(['job', 'service']);
  });
});
