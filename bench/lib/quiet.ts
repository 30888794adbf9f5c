/**
 * The machine is shared: before each timed round, wait (bounded) until other work on it is
 * below a threshold, and record what was found. Set once by the orchestrator from its flags.
 */
import { waitForQuiet } from './proc.js';

export const quietSettings = { thresholdCores: 0.3, maxWaitMs: 60_000, sampleMs: 2000 };

export interface QuietCheck {
  waitedMs: number;
  /** Other work on the machine, in cores, when the round started. */
  othersCores: number;
}

export async function beforeRound(log: (s: string) => void, ownPids: number[] = []): Promise<QuietCheck> {
  const q = await waitForQuiet({ ownPids: [process.pid, ...ownPids], ...quietSettings });
  if (q.othersCores > quietSettings.thresholdCores) log(`  the machine is still busy (${q.othersCores.toFixed(2)} cores used by other work after ${Math.round(q.waitedMs / 1000)} s): measuring anyway`);
  else if (q.waitedMs > quietSettings.sampleMs * 1.5) log(`  waited ${Math.round(q.waitedMs / 1000)} s for other work on the machine to settle`);
  return q;
}
