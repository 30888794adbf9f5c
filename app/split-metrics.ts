/**
 * The split's metrics (process-split.ts): the engine's process asks each ingest process
 * for its series over the cluster's IPC channel and adds them to its own, so one scrape of
 * /metrics sees the whole pipeline. Each ingest process answers from its registry.
 */
import cluster, { type Worker } from 'node:cluster';
import { setTimeout as sleep } from 'node:timers/promises';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** How long the engine's process waits for the ingest processes' series, ms. */
const METRICS_TIMEOUT_MS = 2000;

interface MetricsRequest {
  type: 'um:metrics-request';
  id: number;
}
interface MetricsReply {
  type: 'um:metrics-reply';
  id: number;
  metrics: MetricsJson;
}

/** In an ingest process of the split: answers the engine's process's requests. */
export function serveMetricsToPrimary(registry: Registry): void {
  if (!cluster.isWorker) return;
  process.on('message', (msg: MetricsRequest) => {
    if (msg?.type !== 'um:metrics-request') return;
    void registry.getMetricsAsJSON().then((metrics) => process.send?.({ type: 'um:metrics-reply', id: msg.id, metrics } satisfies MetricsReply));
  });
}

/**
 * In the engine's process: every live ingest process's series, as far as they answer
 * within the timeout (a process that is restarting is left out of that scrape).
 */
export function metricsCollector(workers: () => Worker[]): () => Promise<MetricsJson[]> {
  let nextId = 0;
  return async () => {
    const live = workers().filter((w) => w.isConnected());
    if (live.length === 0) return [];
    const id = nextId++;
    const got: MetricsJson[] = [];
    const listeners = new Map<Worker, (msg: MetricsReply) => void>();
    await Promise.race([
      new Promise<void>((done) => {
        for (const w of live) {
          const listener = (msg: MetricsReply) => {
            if (msg?.type !== 'um:metrics-reply' || msg.id !== id) return;
            got.push(msg.metrics);
            if (got.length === live.length) done();
          };
          listeners.set(w, listener);
          w.on('message', listener);
          w.send({ type: 'um:metrics-request', id } satisfies MetricsRequest);
        }
      }),
      sleep(METRICS_TIMEOUT_MS),
    ]);
    for (const [w, listener] of listeners) w.off('message', listener);
    return got;
  };
}

/**
 * /metrics of the engine's process of a split: its own series added to the ingest
 * processes' (counters summed per label set, prom-client's cluster aggregation).
 */
export function combinedMetrics(own: Registry, others: () => Promise<MetricsJson[]>): Pick<Registry, 'contentType' | 'metrics'> {
  return {
    contentType: own.contentType,
    metrics: async () => {
      const [mine, theirs] = await Promise.all([own.getMetricsAsJSON(), others()]);
      if (theirs.length === 0) return own.metrics();
      return AggregatorRegistry.aggregate([mine as MetricsJson, ...theirs]).metrics();
    },
  };
}

/** Samples the ingest processes accepted and rejected, for /v1/status. */
export async function ingestCounts(others: () => Promise<MetricsJson[]>): Promise<{ accepted: number; rejected: number }> {
  const sum = (all: MetricsJson[], name: string) =>
    all.reduce((n, metrics) => n + (metrics.find((m) => m.name === name)?.values ?? []).reduce((a, v) => a + Number(v.value), 0), 0);
  const theirs = await others();
  return { accepted: sum(theirs, 'um_samples_accepted_total'), rejected: sum(theirs, 'um_samples_rejected_total') };
}
