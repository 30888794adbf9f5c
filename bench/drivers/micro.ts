/** Stage 7 driver: the per-step microbenchmarks, in a process of their own. */
import type { MicroResult } from '../stages/micro.js';
import { runStage } from '../lib/child.js';
import type { WorkloadSpec } from '../lib/workload.js';

export async function runMicro(o: { spec: WorkloadSpec; rounds: number; prefix: string }): Promise<MicroResult> {
  return runStage<MicroResult>('bench/stages/micro.ts', ['--spec', JSON.stringify(o.spec), '--rounds', String(o.rounds), '--prefix', o.prefix], {
    timeoutMs: 20 * 60_000,
  }).result;
}
