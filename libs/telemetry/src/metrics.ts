import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * One prom-client registry per process. Services register their domain metrics on it; /metrics serves it.
 * Default process metrics are collected once, labelled with the service name.
 */
export const metricsRegistry = new Registry();
let defaultsCollected = false;

export function initMetrics(service: string): Registry {
  if (!defaultsCollected) {
    metricsRegistry.setDefaultLabels({ service });
    collectDefaultMetrics({ register: metricsRegistry });
    defaultsCollected = true;
  }
  return metricsRegistry;
}
