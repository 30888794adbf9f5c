/**
 * Starts the parts a process role needs and stops them in an order that loses nothing:
 *   all     ingest + workers + API in one process (the only way in embedded mode, where
 *           one process owns the ClickHouse data directory);
 *   ingest  HTTP ingest only (needs Redis, not ClickHouse): scale out freely;
 *   worker  batch writers, rollups and maintenance jobs (+ health/metrics);
 *   api     the read API.
 */
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { KeyRing } from '../lib/auth.js';
import { resolveApiKeys } from '../lib/api-keys.js';
import { createClickHouse, describeClickHouse, type ClickHouseClient } from '../lib/clickhouse.js';
import { createMetrics } from '../lib/metrics.js';
import { installRateLimits } from '../lib/rate-limit.js';
import { ShutdownSteps } from '../lib/shutdown.js';
import { connectRedis, type RedisHandle } from '../lib/redis.js';
import { applyRetention } from '../lib/retention.js';
import { ledgerGauges } from '../domain/ledger.js';
import { quarantineStats } from '../domain/quarantine.js';
import type { PullCollector } from '../ingest/collectors/index.js';
import { SharedSeriesState } from '../ingest/otlp/shared-state.js';
import { otlpStateMetrics } from '../ingest/otlp/state-metrics.js';
import { analyticsCredentials, type Config } from '../schemas/config.js';
import { migrateUnderLock } from '../lib/migrate.js';
import { redisKeys, type BatchJob, type RedisKeys } from '../schemas/queues.js';
import { createBatchQueue, createErasureQueue } from '../workers/queues.js';
import type { RollupScheduler } from '../workers/rollup.js';
import { limitApiInFlight } from './api-in-flight.js';
import { registerApiRole } from './api-role.js';
import type { RoleContext } from './context.js';
import { createHttpServer } from './http.js';
import { registerStatusRoute } from './status.js';
import { loadConfiguredTargets, registerIngestRole } from './ingest-role.js';
import { combinedMetrics, ingestCounts, serveMetricsToPrimary, type MetricsJson } from './split-metrics.js';
import { registerUpstreamProxy, upstreamReadiness } from './upstream-proxy.js';
import { startWorkerRole } from './worker-role.js';

export interface Pipeline {
  /** Base URL of the HTTP server, e.g. http://127.0.0.1:8080. */
  url: string;
  config: Config;
  redis: RedisHandle;
  redisKeys: RedisKeys;
  ch?: ClickHouseClient;
  queue?: Queue<BatchJob>;
  rollup?: RollupScheduler;
  /** The generated keys file, when API_KEYS was not set. */
  apiKeysFile?: string;
  close(): Promise<void>;
}

export interface PipelineOptions {
  /**
   * The engine's process of a split (process-split.ts): the ingest processes' series, which
   * /metrics and /v1/status add to this process's own.
   */
  ingestProcessesMetrics?: () => Promise<MetricsJson[]>;
}

export async function startPipeline(config: Config, log: Logger, options: PipelineOptions = {}): Promise<Pipeline> {
  const role = config.ROLE;
  // An ingest process of the split: everything but ingest is the engine's process's.
  const upstream = role === 'ingest' ? config.UPSTREAM_URL : undefined;
  const wants = {
    ingest: role === 'all' || role === 'ingest',
    worker: role === 'all' || role === 'worker',
    api: role === 'all' || role === 'api',
  };
  // Fail closed before anything starts: in server mode the API runs analytics SQL as the
  // read-only user only, so missing credentials stop the process with the variables named.
  if (wants.api) analyticsCredentials(config);
  const targets = wants.ingest ? await loadConfiguredTargets(config) : undefined;
  const keys = redisKeys(config.KEY_PREFIX);
  const metrics = createMetrics();
  if (upstream) serveMetricsToPrimary(metrics.registry);
  const { keys: apiKeys, generatedFile } = resolveApiKeys(config.API_KEYS, config.DATA_DIR);

  const redis = await connectRedis({ url: config.REDIS_URL, dataDir: config.DATA_DIR, log });
  log.info({ redis: redis.description, prefix: config.KEY_PREFIX }, 'connected to Redis');
  // Parts stop in the reverse order they started: HTTP first (no new requests), then
  // the workers finish what they hold, and the connections close last.
  // Each step is named and bounded (lib/shutdown.ts): a part that never stops is logged by
  // name, and the rest still stop.
  const shutdown = new ShutdownSteps(log);
  shutdown.add('redis', () => redis.close());
  const closeAll = () => shutdown.run();

  try {
    let ch: ClickHouseClient | undefined;
    let readCh: ClickHouseClient | undefined;
    if (wants.worker || wants.api) {
      // The pipeline's statements carry only numbers: off chdb's lock for bound parameters.
      const client = createClickHouse(config, { inlineIntegerParams: true });
      ch = client;
      shutdown.add('clickhouse', () => client.close());
      // One process migrates at a time; the others wait for it (lib/migrate.ts).
      const applied = await migrateUnderLock(client, redis.client, keys.migrationLock, log);
      const ttlChanged = await applyRetention(client, config.RAW_RETENTION_DAYS, config.AUDIT_RETENTION_MONTHS);
      log.info({ clickhouse: describeClickHouse(config), applied, ttlChanged }, 'ClickHouse ready');
    }
    if (wants.api) {
      // The API reads on a session of its own. An embedded session runs one statement at a
      // time, so on the pipeline's session a usage read waited behind the batch writer's
      // inserts and every statement of a fold round; a second session on the same data runs
      // beside it (test/engine-sessions.integration.test.ts). On a server: a connection pool
      // of its own, so reads never queue behind inserts for a socket.
      const reads = createClickHouse(config);
      readCh = reads;
      shutdown.add('clickhouse reads', () => reads.close());
    }

    const bull = { connection: redis.options, prefix: keys.bullPrefix, attempts: config.JOB_ATTEMPTS };
    const ctx: RoleContext = {
      config,
      log,
      redis,
      keys,
      metrics,
      keyRing: new KeyRing(apiKeys),
      batchQueue: createBatchQueue(bull),
      erasureQueue: createErasureQueue(bull),
      onClose: (name, stop, force) => shutdown.add(name, stop, force),
    };
    for (const queue of [ctx.batchQueue, ctx.erasureQueue]) {
      // BullMQ reconnects by itself; without a listener it would print to stderr instead.
      queue.on('error', (err) => log.warn({ err: err.message, queue: queue.name }, 'queue connection error; reconnecting'));
      ctx.onClose(`queue ${queue.name}`, () => queue.close());
    }

    const rollup = wants.worker && ch ? startWorkerRole(ctx, ch) : undefined;

    let collector: PullCollector | undefined;
    const refreshOtlpState = otlpStateMetrics(new SharedSeriesState(redis.client, keys), metrics);
    const http = createHttpServer({
      log,
      bodyLimit: config.MAX_BODY_BYTES,
      ...(upstream ? {} : { metrics: options.ingestProcessesMetrics ? combinedMetrics(metrics.registry, options.ingestProcessesMetrics) : metrics.registry }),
      readiness: { ...readinessChecks(redis, ch), ...(upstream ? { engine_process: upstreamReadiness(upstream) } : {}) },
      readinessInfo: () => (collector ? { collector_targets: collectorSummary(collector) } : {}),
      beforeScrape: async () => {
        const [waiting, ledger, quarantined] = await Promise.all([ctx.batchQueue.getWaitingCount(), ledgerGauges(redis.client, keys), quarantineStats(redis.client, keys)]);
        metrics.quarantinedRows.set(quarantined.rows);
        metrics.foldLagBatches.set(ledger.foldLag);
        metrics.queueWaiting.set(waiting);
        metrics.dirtyHours.set(ledger.dirtyHours);
        metrics.inflightBatches.set(ledger.inflight);
        metrics.deadLetters.set(await ctx.batchQueue.getFailedCount());
        await refreshOtlpState();
        for (const t of collector?.status() ?? []) {
          const target = t.id;
          metrics.collectorTargetUp.set({ target }, t.health === 'up' ? 1 : 0);
          metrics.collectorSamples.set({ target }, t.samples.produced);
          metrics.collectorLastSuccess.set({ target }, (t.lastSuccessAt ?? 0) / 1000);
          metrics.collectorLastDuration.set({ target }, (t.lastDurationMs ?? 0) / 1000);
          metrics.collectorScrapes.set({ target, outcome: 'success' }, t.scrapes - t.failures);
          metrics.collectorScrapes.set({ target, outcome: 'failure' }, t.failures);
          metrics.collectorSkipped.set({ target }, t.skippedSlots);
          metrics.collectorUnfilledGaps.set({ target }, t.unfilledGaps);
          for (const outcome of ['filled', 'unfilled'] as const) metrics.collectorGapSeconds.set({ target, outcome }, t.gapSeconds[outcome]);
          metrics.collectorCounterResets.set({ target }, t.counterResets);
          for (const result of ['accepted', 'rejected', 'dropped'] as const) metrics.collectorDelivered.set({ target, result }, t.samples[result]);
        }
      },
    });
    // Before the routes: the limits attach to matching routes as they are registered.
    ctx.onClose(
      'rate limits',
      await installRateLimits(http, {
        keyRing: ctx.keyRing,
        redis,
        prefix: config.KEY_PREFIX,
        ingestPerS: wants.ingest ? config.INGEST_REQUESTS_PER_S : 0,
        analyticsPerMin: wants.api ? config.ANALYTICS_REQUESTS_PER_MIN : 0,
        log,
      }),
    );
    // Before the routes, like the rate limits: billing and privacy requests in progress are bounded.
    if (wants.api) limitApiInFlight(http, config.API_MAX_IN_FLIGHT);
    if (wants.ingest) collector = await registerIngestRole(http, ctx, targets);
    if (wants.api && ch && readCh) registerApiRole(http, ctx, { reads: readCh, writes: ch });
    if (upstream) await registerUpstreamProxy(http, upstream);
    else {
      const others = options.ingestProcessesMetrics;
      const statusCh = readCh ?? ch;
      registerStatusRoute(http, { ctx, ...(statusCh ? { ch: statusCh } : {}), collector: () => collector, ...(others ? { otherIngestCounts: () => ingestCounts(others) } : {}) });
    }

    await http.listen({ host: config.HOST, port: config.PORT });
    // Stopping HTTP first refuses new requests and lets those in progress answer.
    ctx.onClose('http', () => http.close());
    const address = http.server.address();
    const port = typeof address === 'object' && address ? address.port : config.PORT;
    const url = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`;
    log.info({ url, role }, 'usage-meter is running');

    const pipeline: Pipeline = { url, config, redis, redisKeys: keys, close: closeAll };
    if (ch) pipeline.ch = ch;
    if (rollup) pipeline.rollup = rollup;
    if (wants.ingest || wants.worker) pipeline.queue = ctx.batchQueue;
    if (generatedFile) pipeline.apiKeysFile = generatedFile;
    return pipeline;
  } catch (err) {
    await closeAll();
    throw err;
  }
}

function readinessChecks(redis: RedisHandle, ch: ClickHouseClient | undefined): Record<string, () => Promise<unknown>> {
  const checks: Record<string, () => Promise<unknown>> = { redis: () => redis.client.ping() };
  if (ch) {
    checks.clickhouse = async () => {
      const r = await ch.ping();
      if (!r.success) throw r.error;
    };
  }
  return checks;
}

/** Pull targets by health, with the failing ones named and why (never a URL's query string). */
function collectorSummary(collector: PullCollector) {
  const status = collector.status();
  return {
    up: status.filter((t) => t.health === 'up').length,
    down: status
      .filter((t) => t.health === 'down')
      .map((t) => ({ target: t.id, error: t.lastError?.code, message: t.lastError?.message, since: t.lastSuccessAt ? new Date(t.lastSuccessAt).toISOString() : undefined })),
    unknown: status.filter((t) => t.health === 'unknown').length,
  };
}
