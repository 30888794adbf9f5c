/**
 * The worker role: batch writers, the hourly rollup, period close, erasure jobs, the
 * retention sweep and the in-flight reconciler. Everything here writes to ClickHouse.
 */
import { Worker, type Job } from 'bullmq';
import type { ClickHouseClient } from '../lib/clickhouse.js';
import { QUEUE_NAMES, type BatchJob, type ErasureJob } from '../schemas/queues.js';
import { createBatchWriter } from '../workers/batch-writer.js';
import { park } from '../domain/ledger.js';
import { isLastAttempt } from '../workers/queues.js';
import { createErasureProcessor } from '../workers/erasure.js';
import { InflightReconciler } from '../workers/inflight-reconciler.js';
import { PeriodCloser } from '../workers/period-closer.js';
import { RetentionSweep } from '../workers/retention-sweep.js';
import { RollupScheduler } from '../workers/rollup.js';
import type { RoleContext } from './context.js';

export function startWorkerRole(ctx: RoleContext, ch: ClickHouseClient): RollupScheduler {
  const { config, log, metrics, keys } = ctx;
  const redis = ctx.redis.client;
  const bull = { connection: ctx.redis.options, prefix: keys.bullPrefix };

  const writeBatch = createBatchWriter({
    ch,
    redis,
    keys,
    maxInsertRows: config.MAX_INSERT_ROWS,
    maxQuarantinedRows: config.QUARANTINE_MAX_ROWS,
    onQuarantined: (batchId, rows, reason) => {
      metrics.rowsQuarantined.inc(rows);
      log.error({ batchId, rows, reason }, 'the engine refused rows of an acknowledged batch: they are quarantined (usage-meter quarantine list); the rest of the batch is written');
    },
    onRewritten: (batchId, missingRows) => {
      metrics.batchesRewritten.inc();
      log.warn({ batchId, missingRows }, 'a redelivered batch was short after its insert (the engine had kept its deduplication token from a crashed insert): written again');
    },
    onInsert: () => {
      metrics.rawInserts.inc();
      rollup.kick();
    },
    onWritten: (rows, ms) => {
      metrics.batchesWritten.inc();
      metrics.rowsWritten.inc(rows);
      metrics.batchWriteSeconds.observe(ms / 1000);
    },
  });
  const batchWorker = new Worker<BatchJob>(QUEUE_NAMES.batches, (job: Job<BatchJob>) => writeBatch(job), {
    ...bull,
    concurrency: config.WORKER_CONCURRENCY,
    lockDuration: config.JOB_LOCK_MS,
    stalledInterval: Math.max(1000, Math.floor(config.JOB_LOCK_MS / 2)),
    maxStalledCount: 100, // a crash is not the job's fault: stalls do not use up its attempts
  });
  batchWorker.on('failed', (job, err) => {
    const final = !job || isLastAttempt(job, 'failed');
    metrics.batchFailures.inc({ final: String(final) });
    log[final ? 'error' : 'warn']({ jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, final ? 'batch job dead-lettered' : 'batch job failed; will retry');
    // A dead letter must not hold back the fold of later batches (also done by the writer;
    // this covers payloads it refused before reading them).
    const { batchId, batchSeq } = (job?.data ?? {}) as Partial<BatchJob>;
    if (final && typeof batchId === 'string' && Number.isSafeInteger(batchSeq)) {
      park(redis, keys, { batchId, batchSeq: batchSeq! }).catch((e: unknown) => log.warn({ err: e }, 'could not park a dead letter'));
    }
  });
  batchWorker.on('error', (err) => log.error({ err }, 'batch worker error'));
  // On close the worker takes no new job and finishes those it holds; past the shutdown
  // bound it is forced (a job it left is redelivered, and its insert is idempotent).
  ctx.onClose('batch worker', () => batchWorker.close(), () => batchWorker.close(true));

  const rollup = new RollupScheduler({
    ch,
    redis,
    keys,
    log,
    k: config.K_ANONYMITY,
    analyticsAttributes: config.ANALYTICS_ATTRIBUTES,
    labelAllowList: { pattern: config.ANALYTICS_LABEL_PATTERN, values: config.ANALYTICS_LABEL_VALUES },
    // A server may be one replica of several: catch up when the write replica changes.
    replicaBarrier: Boolean(config.CLICKHOUSE_URL),
    intervalMs: config.ROLLUP_INTERVAL_MS,
    minGapMs: config.ROLLUP_MIN_GAP_MS,
    rawRetentionDays: config.RAW_RETENTION_DAYS,
    quietMs: config.ROLLUP_QUIET_MS,
    maxDelayMs: config.ROLLUP_MAX_DELAY_MS,
    onHour: (ms) => metrics.rollupSeconds.observe(ms / 1000),
    onFold: (rows, ms) => {
      metrics.rowsFolded.inc(rows);
      metrics.foldSeconds.observe(ms / 1000);
    },
  });
  rollup.start();
  ctx.onClose('rollup', () => rollup.stop());

  const closer = new PeriodCloser({ ch, redis, keys, log, replicaBarrier: Boolean(config.CLICKHOUSE_URL), graceMs: config.PERIOD_GRACE_HOURS * 3_600_000, intervalMs: config.PERIOD_CLOSE_INTERVAL_MS });
  closer.start();
  ctx.onClose('period closer', () => closer.stop());

  const erase = createErasureProcessor({ ch, redis, keys, batchQueue: ctx.batchQueue, log, fingerprintMonths: config.AUDIT_RETENTION_MONTHS });
  const erasureWorker = new Worker<ErasureJob>(QUEUE_NAMES.erasure, (job: Job<ErasureJob>) => erase(job), {
    ...bull,
    concurrency: 1, // erasures rewrite whole parts: one at a time
    lockDuration: 10 * 60_000,
  });
  erasureWorker.on('failed', (job, err) => log.error({ requestId: job?.id, err: err.message }, 'erasure attempt failed'));
  ctx.onClose('erasure worker', () => erasureWorker.close(), () => erasureWorker.close(true));

  const sweep = new RetentionSweep({ ch, redis, keys, erasureQueue: ctx.erasureQueue, log, intervalMs: config.RETENTION_INTERVAL_MS });
  sweep.start();
  ctx.onClose('retention sweep', () => sweep.stop());

  const reconciler = new InflightReconciler({ redis, keys, queue: ctx.batchQueue, log, passMs: config.INFLIGHT_RECONCILE_MS });
  reconciler.start();
  ctx.onClose('in-flight reconciler', () => reconciler.stop());
  return rollup;
}
