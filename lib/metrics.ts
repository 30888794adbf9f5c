/** Prometheus metrics of the hot paths, on one registry per process (GET /metrics). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Why OTLP data points are refused (ingest/otlp/rejections.ts keeps its reasons to these). */
export const OTLP_REJECTION_REASONS = ['unsupported_type', 'unmapped', 'resource', 'invalid_point', 'out_of_time_range', 'duplicate', 'series_limit', 'refused'] as const;
/** Why the OTLP shared cumulative state dropped a Resource's state (ingest/otlp/shared-state.ts). */
export const OTLP_EVICTION_CAUSES = ['idle', 'limit', 'scope_limit'] as const;

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = {
    registry,
    samplesAccepted: new Counter({ name: 'um_samples_accepted_total', help: 'Samples accepted by ingest', registers: [registry] }),
    samplesRejected: new Counter({ name: 'um_samples_rejected_total', help: 'Samples refused by validation', registers: [registry] }),
    batchesWritten: new Counter({ name: 'um_batches_written_total', help: 'Batch jobs written to ClickHouse', registers: [registry] }),
    rowsWritten: new Counter({ name: 'um_raw_rows_written_total', help: 'Raw rows inserted', registers: [registry] }),
    batchWriteSeconds: new Histogram({
      name: 'um_batch_write_seconds',
      help: 'Time to write one batch job',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    rollupSeconds: new Histogram({
      name: 'um_rollup_hour_seconds',
      help: 'Time to recompute one hour whole',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    foldSeconds: new Histogram({
      name: 'um_rollup_fold_seconds',
      help: 'Time to fold the newly written batches into the aggregates (one round)',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    rawInserts: new Counter({ name: 'um_raw_inserts_total', help: 'Inserts into billing.samples_raw (each carries one or more coalesced batches)', registers: [registry] }),
    rowsFolded: new Counter({ name: 'um_rows_folded_total', help: 'Raw rows folded into the aggregates', registers: [registry] }),
    foldLagBatches: new Gauge({ name: 'um_fold_lag_batches', help: 'Accepted batches not yet folded into the aggregates (by acceptance sequence)', registers: [registry] }),
    batchFailures: new Counter({ name: 'um_batch_failures_total', help: 'Batch job attempts that failed', labelNames: ['final'], registers: [registry] }),
    queueWaiting: new Gauge({ name: 'um_queue_waiting_batches', help: 'Batch jobs waiting', registers: [registry] }),
    dirtyHours: new Gauge({ name: 'um_dirty_hours', help: 'Hours waiting to be recomputed', registers: [registry] }),
    collectorTargetUp: new Gauge({ name: 'um_collector_target_up', help: '1 when the last scrape of a pull target succeeded', labelNames: ['target'], registers: [registry] }),
    collectorSamples: new Gauge({ name: 'um_collector_samples_produced', help: 'Samples produced by a pull target since start', labelNames: ['target'], registers: [registry] }),
    collectorLastSuccess: new Gauge({ name: 'um_collector_last_success_timestamp_seconds', help: 'When a pull target was last scraped successfully (0: never)', labelNames: ['target'], registers: [registry] }),
    collectorLastDuration: new Gauge({ name: 'um_collector_last_scrape_duration_seconds', help: 'How long the last scrape of a pull target took', labelNames: ['target'], registers: [registry] }),
    collectorScrapes: new Gauge({ name: 'um_collector_scrapes', help: 'Scrapes of a pull target since start, by outcome', labelNames: ['target', 'outcome'], registers: [registry] }),
    collectorSkipped: new Gauge({ name: 'um_collector_skipped_slots', help: 'Scrape slots skipped because the previous scrape of the target was still running', labelNames: ['target'], registers: [registry] }),
    collectorUnfilledGaps: new Gauge({ name: 'um_collector_unfilled_gaps', help: 'Gaps in a target\'s series that could not be filled since start', labelNames: ['target'], registers: [registry] }),
    collectorGapSeconds: new Gauge({
      name: 'um_collector_gap_seconds',
      help: 'Seconds of missed scrapes of a pull target since start: filled (gauge readings held across them; those samples say estimated="held") or unfilled (not billed)',
      labelNames: ['target', 'outcome'],
      registers: [registry],
    }),
    collectorCounterResets: new Gauge({ name: 'um_collector_counter_resets', help: 'Counter resets seen in a target\'s series since start', labelNames: ['target'], registers: [registry] }),
    collectorDelivered: new Gauge({ name: 'um_collector_samples_delivered', help: 'Samples of a pull target handed to ingest since start, by result (accepted, rejected, dropped)', labelNames: ['target', 'result'], registers: [registry] }),
    deadLetters: new Gauge({ name: 'um_dead_letter_batches', help: 'Batch jobs that ran out of attempts and wait for a replay (usage-meter dead-letters)', registers: [registry] }),
    quarantinedRows: new Gauge({ name: 'um_quarantined_rows', help: 'Acknowledged rows the engine refused for good, waiting in the quarantine (usage-meter quarantine)', registers: [registry] }),
    rowsQuarantined: new Counter({ name: 'um_rows_quarantined_total', help: 'Rows put into the quarantine since start', registers: [registry] }),
    batchesRewritten: new Counter({
      name: 'um_batches_rewritten_total',
      help: "Redelivered batches found short after their insert and written again: the engine's deduplication log held their token without their rows (workers/redelivery-check.ts)",
      registers: [registry],
    }),
    inflightBatches: new Gauge({ name: 'um_inflight_batches', help: 'Acknowledged batches not yet in ClickHouse', registers: [registry] }),
    otlpDataPoints: new Counter({
      name: 'um_otlp_data_points_total',
      help: 'OTLP data points answered (POST /v1/metrics), by result (accepted, rejected) and, when rejected, reason',
      labelNames: ['result', 'reason'],
      registers: [registry],
    }),
    otlpPendingSamples: new Gauge({ name: 'um_otlp_pending_samples', help: 'OTLP samples computed while ingest answered back-pressure, held to go out in front of the next request', registers: [registry] }),
    otlpPendingDropped: new Counter({ name: 'um_otlp_pending_dropped_total', help: 'Held OTLP samples dropped at the bound of the pending samples (not billed)', registers: [registry] }),
    // Read from Redis at scrape time: one value for the whole pipeline, so the split's sum of
    // processes (app/split-metrics.ts) takes the largest, not the sum, of what processes read.
    otlpStateFields: new Gauge({ name: 'um_otlp_state_fields', help: 'Fields (groups + counter series) of the OTLP shared cumulative state in Redis', aggregator: 'max', registers: [registry] }),
    otlpStateScopes: new Gauge({ name: 'um_otlp_state_scopes', help: 'OTLP Resources whose cumulative state is held in Redis', aggregator: 'max', registers: [registry] }),
    otlpStateEvictions: new Counter({
      name: 'um_otlp_state_evictions_total',
      help: 'OTLP Resources whose cumulative state was dropped, by cause (idle, limit: total bound, scope_limit: per-Resource bound); their next export is a baseline',
      labelNames: ['cause'],
      aggregator: 'max',
      registers: [registry],
    }),
  };
  // Counters with labels have no series until first incremented: a dashboard could not tell
  // "no failure" from "not reported". Every label value starts at zero.
  for (const final of ['true', 'false']) metrics.batchFailures.labels({ final }).inc(0);
  metrics.otlpDataPoints.labels({ result: 'accepted' }).inc(0);
  for (const reason of OTLP_REJECTION_REASONS) metrics.otlpDataPoints.labels({ result: 'rejected', reason }).inc(0);
  for (const cause of OTLP_EVICTION_CAUSES) metrics.otlpStateEvictions.labels({ cause }).inc(0);
  return metrics;
}
export type Metrics = ReturnType<typeof createMetrics>;
