/**
 * Stages 3 and 4 driver: at a fixed offered load (half the measured end-to-end maximum),
 * the 202's latency and how long until a sample is visible in the usage API.
 *
 *   live    samples of the current hour, as in production at that rate; the run starts
 *           on an empty hour, so the hour is still small
 *   steady  live, on an hour already holding `steadyMinutes` minutes at that rate (what
 *           the hour looks like that far into it in production)
 *   replay  past hours sent at that rate (each hour holds at most ~156k samples)
 */
import { runRound, type RoundResult } from '../lib/round.js';
import { spread, type Spread } from '../lib/stats.js';
import { liveSpec, replaySpecForItems } from '../lib/workload.js';

export interface LatencySummary {
  workload: Workload;
  /** steady only: minutes of the hour filled before the load. */
  prefillMinutes: number | null;
  offeredRatePerS: number;
  seconds: number;
  achievedAckRatePerS: Spread;
  ingestP50Ms: Spread;
  ingestP99Ms: Spread;
  /** p99 without the first 5 s of each round (JIT and caches of a freshly started product). */
  ingestP99AfterWarmupMs: Spread;
  freshnessP50Ms: Spread;
  freshnessP99Ms: Spread;
  /** Median freshness in the first, middle and last third of the run (median over rounds). */
  freshnessP50ByThirdMs: number[];
  freshnessNotVisible: Spread;
  usageApiP50Ms: Spread;
  usageApiP99Ms: Spread;
  backpressure503: Spread;
  drainSeconds: Spread;
  serverPeakRssMB: Spread;
  serverAvgCoresBusy: Spread;
  othersBusyCores: Spread;
  /** Mean time of a fold round (new batches added to the aggregates), ms, and whole-hour recomputations. */
  foldRoundMs: Spread;
  rollupHours: Spread;
  /** Rounds cut short, with why and the product's logged errors. */
  aborted: Array<{ round: string; reason: string; loggedErrors: RoundResult['server']['loggedErrors'] }>;
  rounds: RoundResult[];
}

export type Workload = 'live' | 'steady' | 'replay';

export async function runLatency(o: { workload: Workload; steadyMinutes: number; rate: number; seconds: number; rounds: number; runId: string; workDir: string; keepData: boolean; maxServerRssMB: number; ingestProcesses?: number; log: (s: string) => void }): Promise<LatencySummary> {
  const rounds: RoundResult[] = [];
  for (let r = 1; r <= o.rounds; r++) {
    const steady = o.workload === 'steady';
    const res = await runRound({
      runId: o.runId, name: `${o.workload}-${r}`, mode: 'rate', rate: o.rate, concurrency: 1, probe: true, ingestProcesses: o.ingestProcesses ?? 0,
      // The spec is made once the prefill is done: its `ts` must follow the clock from then on.
      spec: () => (o.workload === 'replay' ? replaySpecForItems(Math.round(o.rate * o.seconds), 1000) : liveSpec(o.rate, o.seconds, 1000)),
      workDir: o.workDir, keepData: o.keepData, maxServerRssMB: o.maxServerRssMB, log: o.log,
      idleTimeoutMs: steady ? 30 * 60_000 : 10 * 60_000,
      probeGraceMs: steady ? 20 * 60_000 : 60_000,
      ...(steady ? { prefill: { ratePerS: o.rate, minutes: o.steadyMinutes, loadSeconds: o.seconds } } : {}),
    });
    rounds.push(res);
    if (res.aborted) o.log(`  ${o.workload} round ${r} aborted: ${res.aborted}; the product logged: ${res.server.loggedErrors.map((e) => `${e.count}× ${e.message}`).join(' | ') || 'nothing'}`);
    o.log(
      `  ${o.workload} round ${r}: 202 p50/p99 ${res.loadgen.latencyMs.p50.toFixed(0)}/${res.loadgen.latencyMs.p99.toFixed(0)} ms, ` +
        `freshness p50/p99 ${res.freshness?.freshnessMs.p50.toFixed(0)}/${res.freshness?.freshnessMs.p99.toFixed(0)} ms`,
    );
  }
  const f = (fn: (r: RoundResult) => number | null | undefined) => spread(rounds.map((r) => fn(r) ?? Number.NaN));
  return {
    workload: o.workload,
    prefillMinutes: o.workload === 'steady' ? o.steadyMinutes : null,
    offeredRatePerS: o.rate,
    seconds: o.seconds,
    achievedAckRatePerS: f((r) => r.loadgen.achievedAckRatePerS),
    ingestP50Ms: f((r) => r.loadgen.latencyMs.p50),
    ingestP99Ms: f((r) => r.loadgen.latencyMs.p99),
    ingestP99AfterWarmupMs: f((r) => r.loadgen.latencyAfterWarmupMs.p99),
    freshnessP50Ms: f((r) => r.freshness?.freshnessMs.p50),
    freshnessP99Ms: f((r) => r.freshness?.freshnessMs.p99),
    freshnessP50ByThirdMs: [0, 1, 2].map((i) => spread(rounds.map((r) => r.freshness?.freshnessP50ByThirdMs[i] ?? Number.NaN)).median),
    freshnessNotVisible: f((r) => r.freshness?.notVisible),
    usageApiP50Ms: f((r) => r.freshness?.usageApiMs.p50),
    usageApiP99Ms: f((r) => r.freshness?.usageApiMs.p99),
    backpressure503: f((r) => r.loadgen.backpressure503),
    drainSeconds: f((r) => r.drainSeconds),
    serverPeakRssMB: f((r) => r.server.peakRssMB),
    serverAvgCoresBusy: f((r) => r.server.avgCoresBusy),
    othersBusyCores: f((r) => r.machine.othersBusyCores),
    foldRoundMs: f((r) => (r.product.foldSeconds * 1000) / r.product.foldRounds),
    rollupHours: f((r) => r.product.rollupHours),
    aborted: rounds.filter((r) => r.aborted).map((r) => ({ round: r.name, reason: r.aborted as string, loggedErrors: r.server.loggedErrors })),
    rounds,
  };
}
