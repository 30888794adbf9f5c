/** Stage 1 driver: the engine limit, one fresh process and data directory per round. */
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { EngineResult } from '../stages/engine.js';
import { runStage } from '../lib/child.js';
import { ProcessWatch } from '../lib/proc.js';
import { beforeRound } from '../lib/quiet.js';
import { spread, type Spread } from '../lib/stats.js';
import type { WorkloadSpec } from '../lib/workload.js';

export interface EngineSummary {
  insertPath: 'client' | 'native';
  rowsPerInsert: number;
  rowsPerS: Spread;
  cpuUsPerRow: Spread;
  engineElapsedUsPerRow: Spread;
  cpuUsPerRowByThread: Record<string, number>;
  rollupRowsPerS: Spread | null;
  rollupCpuUsPerRow: Spread | null;
  rollupHourMsP50: Spread | null;
  peakRssMB: Spread;
  serializationWaitMs: Spread;
  othersBusyCores: Spread;
  clickhouseVersion: string;
  rounds: EngineResult[];
}

export async function runEngine(o: { spec: WorkloadSpec; rounds: number; insertPath: 'client' | 'native'; rollup: boolean; workDir: string; log: (s: string) => void }): Promise<EngineSummary> {
  const rounds: EngineResult[] = [];
  const others: number[] = [];
  for (let r = 1; r <= o.rounds; r++) {
    await beforeRound(o.log);
    const dir = path.join(o.workDir, `engine-${o.insertPath}-${o.spec.batchSize}-${r}`);
    const run = runStage<EngineResult>('bench/stages/engine.ts', ['--data-dir', dir, '--spec', JSON.stringify(o.spec), '--insert', o.insertPath, '--rollup', String(o.rollup)], {
      timeoutMs: 30 * 60_000,
    });
    const watch = new ProcessWatch({ engine: run.child.pid as number, orchestrator: process.pid }).start();
    try {
      const res = await run.result;
      rounds.push(res);
      others.push(watch.stop().othersBusyCores);
      o.log(`  engine ${o.insertPath} round ${r}: ${Math.round(res.rowsPerS).toLocaleString('en')} rows/s` + (res.rollup ? `, rollup ${Math.round(res.rollup.rowsPerS).toLocaleString('en')} rows/s` : ''));
    } finally {
      watch.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const byThread: Record<string, number[]> = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r.cpuUsPerRowByThread)) (byThread[k] ??= []).push(v);
  const rolled = rounds.filter((r) => r.rollup);
  return {
    insertPath: o.insertPath,
    rowsPerInsert: spread(rounds.map((r) => r.rows / r.inserts)).median,
    rowsPerS: spread(rounds.map((r) => r.rowsPerS)),
    cpuUsPerRow: spread(rounds.map((r) => r.cpuUsPerRow)),
    engineElapsedUsPerRow: spread(rounds.map((r) => r.engineElapsedUsPerRow)),
    cpuUsPerRowByThread: Object.fromEntries(Object.entries(byThread).map(([k, v]) => [k, spread(v).median])),
    rollupRowsPerS: rolled.length ? spread(rolled.map((r) => r.rollup!.rowsPerS)) : null,
    rollupCpuUsPerRow: rolled.length ? spread(rolled.map((r) => r.rollup!.cpuUsPerRow)) : null,
    rollupHourMsP50: rolled.length ? spread(rolled.map((r) => r.rollup!.hourMs.p50)) : null,
    peakRssMB: spread(rounds.map((r) => r.peakRssMB)),
    serializationWaitMs: spread(rounds.map((r) => r.serialization.shortQueryWaitMs)),
    othersBusyCores: spread(others),
    clickhouseVersion: rounds[0]?.clickhouseVersion ?? 'unknown',
    rounds,
  };
}
