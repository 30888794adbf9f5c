/**
 * Stage 5 driver: grows one data directory scale by scale (1M → 10M → 100M stored samples)
 * and measures the billing queries at each; then (5b, when a rate is given) starts the
 * product on the largest store and asks stored accounts' 30-day usage while the load
 * generator feeds it at that rate.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { HistoryResult } from '../stages/history.js';
import type { AccountProbeResult } from '../lib/account-probe.js';
import { runStage } from '../lib/child.js';
import { runRound } from '../lib/round.js';
import { liveSpec } from '../lib/workload.js';
import { historyMonth, samplesPerAccount } from '../lib/history-shape.js';

export interface HistorySummary {
  month: string;
  rollupMode: 'product' | 'sql';
  samplesPerAccount: number;
  scales: Array<HistoryResult & { scale: number }>;
  /** 5b: the largest store, queried while ingest runs at `ratePerS`. */
  underLoad?: UnderLoadResult;
}

export interface UnderLoadResult {
  storedSamples: number;
  ratePerS: number;
  seconds: number;
  accountProbe?: AccountProbeResult;
  ingestP99Ms: number;
  achievedAckRatePerS: number;
  serverAvgCoresBusy: number;
  aborted?: string;
}

export interface UnderLoadOptions {
  ratePerS: number;
  seconds: number;
  runId: string;
  maxServerRssMB: number;
}

export async function runHistory(o: { prefix: string; scales: number[]; rollup: 'product' | 'sql'; sampleHours: number; accountQueries: number; exportQueries: number; workDir: string; keepData: boolean; underLoad?: UnderLoadOptions; log: (s: string) => void }): Promise<HistorySummary> {
  const month = historyMonth();
  const monthStart = month.startMs;
  const perAccount = samplesPerAccount(month);
  const dir = path.join(o.workDir, 'history');
  const scales: HistorySummary['scales'] = [];
  let accounts = 0;
  let underLoad: UnderLoadResult | undefined;
  try {
    for (const scale of [...o.scales].sort((x, y) => x - y)) {
      const target = Math.max(1, Math.round(scale / perAccount));
      if (target <= accounts) continue;
      const res = await runStage<HistoryResult>('bench/stages/history.ts', [
        '--data-dir', dir, '--accounts-from', String(accounts), '--accounts-to', String(target),
        '--month-start', String(monthStart), '--rollup', o.rollup, '--sample-hours', String(o.sampleHours),
        '--account-queries', String(o.accountQueries), '--export-queries', String(o.exportQueries), '--prefix', `${o.prefix}-${target}`,
      ], { timeoutMs: 4 * 3600_000, onLine: (l) => o.log(`    ${l}`) }).result;
      accounts = target;
      scales.push({ ...res, scale });
      o.log(
        `  history ${res.storedSamples.toLocaleString('en')} samples: account 30-day p50/p99 ${res.accountQueryMs.p50.toFixed(1)}/${res.accountQueryMs.p99.toFixed(1)} ms, ` +
          `export p50/p99 ${res.exportMs.p50.toFixed(0)}/${res.exportMs.p99.toFixed(0)} ms (${res.exportRecords} records)`,
      );
    }
    const top = scales.at(-1);
    if (o.underLoad && top) underLoad = await usageUnderLoad(o.underLoad, dir, top.storedSamples, accounts, monthStart, o.workDir, o.log);
  } finally {
    if (!o.keepData) rmSync(dir, { recursive: true, force: true });
  }
  return { month: month.label, rollupMode: o.rollup, samplesPerAccount: perAccount, scales, ...(underLoad ? { underLoad } : {}) };
}

/**
 * 5b: the product on the stored history, the load generator at the given rate (live samples
 * of the current hour, as stage 3), and stored accounts' 30-day usage asked back to back
 * meanwhile. PERIOD_GRACE_HOURS at its maximum (90 days) keeps the period closer from closing
 * the history month during the round: a store this old would have closed it long ago.
 */
async function usageUnderLoad(u: UnderLoadOptions, dataDir: string, storedSamples: number, accounts: number, monthStartMs: number, workDir: string, log: (s: string) => void): Promise<UnderLoadResult> {
  log(`5b account usage at ${(storedSamples / 1e6).toFixed(0)}M stored samples while ingest runs at ${Math.round(u.ratePerS).toLocaleString('en')} samples/s for ${u.seconds} s`);
  const picks = Array.from({ length: 100 }, () => `hacct-${String(Math.floor(Math.random() * accounts)).padStart(6, '0')}`);
  const round = await runRound({
    runId: u.runId, name: 'history-under-load', mode: 'rate', rate: u.ratePerS, concurrency: 1, probe: false,
    spec: () => liveSpec(u.ratePerS, u.seconds, 1000),
    workDir, keepData: true, dataDir, maxServerRssMB: u.maxServerRssMB, idleTimeoutMs: 10 * 60_000, log,
    env: { PERIOD_GRACE_HOURS: '2160' },
    accountProbe: { accounts: picks, fromMs: monthStartMs, toMs: monthStartMs + 30 * 24 * 3_600_000, pauseMs: 20 },
  });
  const p = round.accountProbe?.usageMs;
  log(`  5b: account 30-day p50/p99 ${p?.p50.toFixed(1)}/${p?.p99.toFixed(1)} ms (n=${p?.n}, ${round.accountProbe?.errors} errors), 202 p99 ${round.loadgen.latencyMs.p99.toFixed(0)} ms`);
  return {
    storedSamples,
    ratePerS: u.ratePerS,
    seconds: u.seconds,
    ...(round.accountProbe ? { accountProbe: round.accountProbe } : {}),
    ingestP99Ms: round.loadgen.latencyMs.p99,
    achievedAckRatePerS: round.loadgen.achievedAckRatePerS,
    serverAvgCoresBusy: round.server.avgCoresBusy,
    ...(round.aborted ? { aborted: round.aborted } : {}),
  };
}
