/**
 * Stage 2 driver (with 6 and part of 7): end-to-end throughput. Each round pushes the same
 * fixed workload through a fresh product, as fast as it takes it, and times first POST →
 * `complete`.
 */
import { runRound, type RoundResult } from '../lib/round.js';
import { spread, type Spread } from '../lib/stats.js';
import type { WorkloadSpec } from '../lib/workload.js';

export interface E2eSummary {
  samples: number;
  samplesPerS: Spread;
  /** Acknowledgement rate alone (first POST → last 202). */
  ackRatePerS: Spread;
  drainSeconds: Spread;
  analyticsLagSeconds: Spread;
  serverCpuUsPerSample: Spread;
  serverCpuUsPerSampleByPart: Record<string, number>;
  serverAvgCoresBusy: Spread;
  serverPeakRssMB: Spread;
  loadgenPeakRssMB: Spread;
  loadgenCpuUsPerSample: Spread;
  backpressure503: Spread;
  redisPeakDeltaMB: Spread;
  peakQueueWaiting: Spread;
  rollupShareOfWall: Spread;
  rollupHours: Spread;
  foldRounds: Spread;
  /** Mean time of a fold round, ms. */
  foldRoundMs: Spread;
  rowsPerInsert: Spread;
  batchWriteMsPerBatch: Spread;
  othersBusyCores: Spread;
  ingestLatencyAtMaxP99Ms: Spread;
  /** Rounds cut short, with why and the product's logged errors. */
  aborted: Array<{ round: string; reason: string; loggedErrors: RoundResult['server']['loggedErrors'] }>;
  rounds: RoundResult[];
}

export async function runE2e(o: { spec: WorkloadSpec; rounds: number; concurrency: number; ingestProcesses?: number; runId: string; workDir: string; keepData: boolean; maxServerRssMB: number; log: (s: string) => void }): Promise<E2eSummary> {
  const rounds: RoundResult[] = [];
  for (let r = 1; r <= o.rounds; r++) {
    const res = await runRound({
      runId: o.runId, name: `e2e-${r}`, spec: o.spec, mode: 'max', concurrency: o.concurrency, probe: false, ingestProcesses: o.ingestProcesses ?? 0,
      workDir: o.workDir, keepData: o.keepData, maxServerRssMB: o.maxServerRssMB, idleTimeoutMs: 20 * 60_000, log: o.log,
    });
    rounds.push(res);
    o.log(
      `  e2e round ${r}: ${Math.round(res.samplesPerS ?? Number.NaN).toLocaleString('en')} samples/s end to end ` +
        `(acks ${Math.round(res.loadgen.achievedAckRatePerS).toLocaleString('en')}/s, drain ${res.drainSeconds?.toFixed(1)} s), ` +
        `server ${res.server.cpuUsPerSample.toFixed(1)} CPU-µs/sample, peak RSS ${Math.round(res.server.peakRssMB)} MB`,
    );
  }
  const parts: Record<string, number[]> = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r.server.cpuUsPerSampleByPart)) (parts[k] ??= []).push(v);
  const f = (fn: (r: RoundResult) => number | null) => spread(rounds.map((r) => fn(r) ?? Number.NaN));
  return {
    samples: rounds[0]?.loadgen.accepted ?? 0,
    samplesPerS: f((r) => r.samplesPerS),
    ackRatePerS: f((r) => r.loadgen.achievedAckRatePerS),
    drainSeconds: f((r) => r.drainSeconds),
    analyticsLagSeconds: f((r) => r.analyticsLagSeconds),
    serverCpuUsPerSample: f((r) => r.server.cpuUsPerSample),
    serverCpuUsPerSampleByPart: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, spread(v).median])),
    serverAvgCoresBusy: f((r) => r.server.avgCoresBusy),
    serverPeakRssMB: f((r) => r.server.peakRssMB),
    loadgenPeakRssMB: f((r) => r.loadgen.peakRssWhileSendingMB),
    loadgenCpuUsPerSample: f((r) => r.loadgen.cpuUsPerSample),
    backpressure503: f((r) => r.loadgen.backpressure503),
    redisPeakDeltaMB: f((r) => r.redis.peakUsedMemoryDeltaMB),
    peakQueueWaiting: f((r) => r.redis.peakQueueWaiting),
    rollupShareOfWall: f((r) => (r.e2eSeconds ? (r.product.rollupSeconds + r.product.foldSeconds) / r.e2eSeconds : null)),
    rollupHours: f((r) => r.product.rollupHours),
    foldRounds: f((r) => r.product.foldRounds),
    foldRoundMs: f((r) => (r.product.foldSeconds * 1000) / r.product.foldRounds),
    rowsPerInsert: f((r) => r.product.rowsWritten / r.product.rawInserts),
    batchWriteMsPerBatch: f((r) => (r.product.batchWriteSeconds * 1000) / r.product.batchesWritten),
    othersBusyCores: f((r) => r.machine.othersBusyCores),
    ingestLatencyAtMaxP99Ms: f((r) => r.loadgen.latencyMs.p99),
    aborted: rounds.filter((r) => r.aborted).map((r) => ({ round: r.name, reason: r.aborted as string, loggedErrors: r.server.loggedErrors })),
    rounds,
  };
}
