/**
 * Starts the parts a process role needs and stops them in an order that loses nothing:
 *   all     ingest + workers + API in one process (the only way in embedded mode, where
 *           one process owns the ClickHouse data directory);
 *   ingest  HTTP ingest only (needs Redis, not ClickHouse): scale out freely;
 *   worker  batch writers and rollups (+ health/metrics);
 *   api     the read API.
 */
import { Worker, type Job, type Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { KeyRing } from '../lib/auth.js';
import { resolveApiKeys } from '../lib/api-keys.js';
import { createClickHouse, describeClickHouse, type ClickHouseClient } from '../lib/clickhouse.js';
import { createMetrics } from '../lib/metrics.js';
import { connectRedis, type RedisHandle } from '../lib/redis.js';
import { acceptorFromConfig, type BatchAcceptor } from '../ingest/accept.js';
import { registerIngestRoutes } from '../ingest/routes.js';
import { loadTargets, PullCollector } from '../ingest/collectors/index.js';
import { registerQueryRoutes } from '../queries/routes.js';
import type { Config } from '../schemas/config.js';
import { migrate } from '../schemas/migrate.js';
import { QUEUE_NAMES, redisKeys, type BatchJob, type ErasureJob, type RedisKeys } from '../schemas/queues.js';
import { createBatchWriter } from '../workers/batch-writer.js';
import { InflightReconciler } from '../workers/inflight-reconciler.js';
import { PeriodCloser } from '../workers/period-closer.js';
import { createBatchQueue, createErasureQueue } from '../workers/queues.js';
import { createErasureProcessor } from '../workers/erasure.js';
import { RetentionSweep } from '../workers/retention-sweep.js';
import { registerPrivacyRoutes } from '../queries/privacy-routes.js';
import { registerAnalyticsRoutes } from '../queries/analytics-routes.js';
import { registerExportRoutes } from '../queries/export-routes.js';
import { AuditRecorder } from '../lib/audit.js';
import { applyRetention } from '../lib/retention.js';
import { RollupScheduler } from '../workers/rollup.js';
import { createHttpServer } from './http.js';

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

export async function startPipeline(config: Config, log: Logger): Promise<Pipeline> {
  const role = config.ROLE;
  const wants = {
    ingest: role === 'all' || role === 'ingest',
    worker: role === 'all' || role === 'worker',
    api: role === 'all' || role === 'api',
  };
  const keys = redisKeys(config.KEY_PREFIX);
  const metrics = createMetrics();
  const { keys: apiKeys, generatedFile } = resolveApiKeys(config.API_KEYS, config.DATA_DIR);
  const keyRing = new KeyRing(apiKeys);

  const redis = await connectRedis({ url: config.REDIS_URL, dataDir: config.DATA_DIR, log });
  log.info({ redis: redis.description, prefix: config.KEY_PREFIX }, 'connected to Redis');
  // Parts stop in the reverse order they started: HTTP first (no new requests), then
  // the workers finish what they hold, and the connections close last.
  const closers: (() => Promise<unknown>)[] = [() => redis.close()];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((err: unknown) => log.error({ err }, 'error while stopping'));
  };

  try {
    let ch: ClickHouseClient | undefined;
    if (wants.worker || wants.api) {
      ch = createClickHouse(config);
      const client = ch;
      closers.push(() => client.close());
      const applied = await migrate(ch, log);
      const ttlChanged = await applyRetention(ch, config.RAW_RETENTION_DAYS, config.AUDIT_RETENTION_MONTHS);
      log.info({ clickhouse: describeClickHouse(config), applied, ttlChanged }, 'ClickHouse ready');
    }

    const queue = createBatchQueue({ connection: redis.options, prefix: keys.bullPrefix, attempts: config.JOB_ATTEMPTS });
    closers.push(() => queue.close());
    const erasureQueue = createErasureQueue({ connection: redis.options, prefix: keys.bullPrefix, attempts: config.JOB_ATTEMPTS });
    closers.push(() => erasureQueue.close());

    let rollup: RollupScheduler | undefined;
    if (wants.worker && ch) {
      const writeBatch = createBatchWriter({
        ch,
        redis: redis.client,
        keys,
        onWritten: (rows, ms) => {
          metrics.batchesWritten.inc();
          metrics.rowsWritten.inc(rows);
          metrics.batchWriteSeconds.observe(ms / 1000);
        },
      });
      const worker = new Worker<BatchJob>(QUEUE_NAMES.batches, (job: Job<BatchJob>) => writeBatch(job), {
        connection: redis.options,
        prefix: keys.bullPrefix,
        concurrency: config.WORKER_CONCURRENCY,
        lockDuration: config.JOB_LOCK_MS,
        stalledInterval: Math.max(1000, Math.floor(config.JOB_LOCK_MS / 2)),
        maxStalledCount: 100, // a crash is not the job's fault: stalls do not use up its attempts
      });
      worker.on('failed', (job, err) => {
        const final = !job || job.attemptsMade >= (job.opts.attempts ?? 1);
        metrics.batchFailures.inc({ final: String(final) });
        log[final ? 'error' : 'warn']({ jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, final ? 'batch job dead-lettered' : 'batch job failed; will retry');
      });
      worker.on('error', (err) => log.error({ err }, 'batch worker error'));
      // On close the worker takes no new job and finishes those it holds.
      closers.push(() => worker.close());

      rollup = new RollupScheduler({
        ch,
        redis: redis.client,
        keys,
        log,
        k: config.K_ANONYMITY,
        analyticsAttributes: config.ANALYTICS_ATTRIBUTES,
        intervalMs: config.ROLLUP_INTERVAL_MS,
        rawRetentionDays: config.RAW_RETENTION_DAYS,
        quietMs: config.ROLLUP_QUIET_MS,
        maxDelayMs: config.ROLLUP_MAX_DELAY_MS,
        onHour: (ms) => metrics.rollupSeconds.observe(ms / 1000),
      });
      rollup.start();
      const scheduler = rollup;
      closers.push(() => scheduler.stop());

      const closer = new PeriodCloser({
        ch,
        redis: redis.client,
        keys,
        log,
        graceMs: config.PERIOD_GRACE_HOURS * 3_600_000,
        intervalMs: config.PERIOD_CLOSE_INTERVAL_MS,
      });
      closer.start();
      closers.push(() => closer.stop());

      const erase = createErasureProcessor({ ch, redis: redis.client, keys, batchQueue: queue, log });
      const erasureWorker = new Worker<ErasureJob>(QUEUE_NAMES.erasure, (job: Job<ErasureJob>) => erase(job), {
        connection: redis.options,
        prefix: keys.bullPrefix,
        concurrency: 1, // erasures rewrite whole parts: one at a time
        lockDuration: 10 * 60_000,
      });
      erasureWorker.on('failed', (job, err) => log.error({ requestId: job?.id, err: err.message }, 'erasure attempt failed'));
      closers.push(() => erasureWorker.close());

      const sweep = new RetentionSweep({ ch, redis: redis.client, keys, erasureQueue, log, intervalMs: config.RETENTION_INTERVAL_MS });
      sweep.start();
      closers.push(() => sweep.stop());

      const reconciler = new InflightReconciler({ redis: redis.client, keys, queue, log });
      reconciler.start();
      closers.push(() => reconciler.stop());
    }

    const readiness: Record<string, () => Promise<unknown>> = { redis: () => redis.client.ping() };
    if (ch) {
      const client = ch;
      readiness.clickhouse = async () => {
        const r = await client.ping();
        if (!r.success) throw r.error;
      };
    }
    let collector: PullCollector | undefined;
    const http: FastifyInstance = createHttpServer({
      log,
      bodyLimit: config.MAX_BODY_BYTES,
      metrics: metrics.registry,
      readiness,
      beforeScrape: async () => {
        const [waiting, dirty, inflight] = await Promise.all([
          queue.getWaitingCount(),
          redis.client.hlen(keys.dirtyHours),
          redis.client.zcard(keys.inflight),
        ]);
        metrics.queueWaiting.set(waiting);
        metrics.dirtyHours.set(dirty);
        metrics.inflightBatches.set(inflight);
        for (const t of collector?.status() ?? []) {
          metrics.collectorTargetUp.set({ target: t.id }, t.health === 'up' ? 1 : 0);
          metrics.collectorSamples.set({ target: t.id }, t.samples.produced);
        }
      },
    });
    if (wants.ingest) {
      const acceptor = acceptorFromConfig(config, {
        redis: redis.client,
        queue,
        keys,
        onAccepted: (accepted, rejected) => {
          metrics.samplesAccepted.inc(accepted);
          metrics.samplesRejected.inc(rejected);
        },
      });
      registerIngestRoutes(http, { acceptor, keys: keyRing, redis: redis.client, redisKeys: keys });
      collector = await startCollector(config, acceptor, log);
      if (collector) {
        const running = collector;
        closers.push(() => running.stop()); // flushes what it scraped into the acceptor first
      }
    }
    if (wants.api && ch) {
      const audit = new AuditRecorder(ch, log);
      audit.register(http);
      audit.start();
      closers.push(() => audit.stop()); // after HTTP has stopped: the last calls are written too
      registerQueryRoutes(http, { ch, redis: redis.client, redisKeys: keys, keys: keyRing });
      registerPrivacyRoutes(http, {
        ch,
        redis: redis.client,
        redisKeys: keys,
        keys: keyRing,
        erasureQueue,
        accountRetentionMonths: config.ACCOUNT_RETENTION_MONTHS,
      });
      registerAnalyticsRoutes(http, {
        ch,
        keys: keyRing,
        config,
        ...(config.CLICKHOUSE_ANALYTICS_PASSWORD
          ? { sandboxCredentials: { username: config.CLICKHOUSE_ANALYTICS_USER, password: config.CLICKHOUSE_ANALYTICS_PASSWORD } }
          : {}),
      });
      registerExportRoutes(http, { ch, redis: redis.client, redisKeys: keys, keys: keyRing });
    }

    await http.listen({ host: config.HOST, port: config.PORT });
    // Stopping HTTP first refuses new requests and lets those in progress answer.
    closers.push(() => http.close());
    const address = http.server.address();
    const port = typeof address === 'object' && address ? address.port : config.PORT;
    const url = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`;
    log.info({ url, role }, 'usage-meter is running');

    const pipeline: Pipeline = {
      url,
      config,
      redis,
      redisKeys: keys,
      close: closeAll,
    };
    if (ch) pipeline.ch = ch;
    if (rollup) pipeline.rollup = rollup;
    if (wants.ingest || wants.worker) pipeline.queue = queue;
    if (generatedFile) pipeline.apiKeysFile = generatedFile;
    return pipeline;
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** Starts the pull collectors when targets are configured; a bad target list stops start-up. */
async function startCollector(config: Config, acceptor: BatchAcceptor, log: Logger): Promise<PullCollector | undefined> {
  if (!config.COLLECTOR_TARGETS_FILE && !config.COLLECTOR_TARGETS) return undefined;
  const { targets } = await loadTargets({ file: config.COLLECTOR_TARGETS_FILE, inline: config.COLLECTOR_TARGETS });
  const collector = new PullCollector({ targets, sink: acceptor, logger: log, maxBatchItems: Math.min(1000, config.MAX_BATCH_ITEMS) });
  collector.start();
  log.info({ targets: targets.length }, 'pull collectors started');
  return collector;
}
