/**
 * Stage 5 driver: grows one data directory scale by scale (1M → 10M → 100M stored samples)
 * and measures the billing queries at each.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { HistoryResult } from '../stages/history.js';
import { runStage } from '../lib/child.js';
import { historyMonth, samplesPerAccount } from '../lib/history-shape.js';

export interface HistorySummary {
  month: string;
  rollupMode: 'product' | 'sql';
  samplesPerAccount: number;
  scales: Array<HistoryResult & { scale: number }>;
}

export async function runHistory(o: { prefix: string; scales: number[]; rollup: 'product' | 'sql'; sampleHours: number; accountQueries: number; exportQueries: number; workDir: string; keepData: boolean; log: (s: string) => void }): Promise<HistorySummary> {
  const month = historyMonth();
  const monthStart = month.startMs;
  const perAccount = samplesPerAccount(month);
  const dir = path.join(o.workDir, 'history');
  const scales: HistorySummary['scales'] = [];
  let accounts = 0;
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
  } finally {
    if (!o.keepData) rmSync(dir, { recursive: true, force: true });
  }
  return { month: month.label, rollupMode: o.rollup, samplesPerAccount: perAccount, scales };
}
