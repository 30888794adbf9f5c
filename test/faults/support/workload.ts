/**
 * A known workload for a fault scenario: a small simulated fleet (sim/) over the last few
 * whole hours, in batches, with the simulator's re-sends and invalid items mixed in. The
 * oracle is computed from what the pipeline acknowledged, never from the product's code.
 */
import { createFleet, generateSamples, type SampleBatch } from '../../../sim/index.js';

export const HOUR_MS = 3_600_000;

export interface Workload {
  batches: SampleBatch[];
  accounts: string[];
  /** Whole-hour range covering every sample's usage hour. */
  fromMs: number;
  toMs: number;
  /** Items in all batches (invalid ones included). */
  items: number;
}

export interface WorkloadOptions {
  accounts: number;
  resources: number;
  hours: number;
  /** Window length (interval_s): a shorter window means more samples per hour. */
  stepS?: number;
  batchSize?: number;
  seed?: number;
}

export function makeWorkload(o: WorkloadOptions): Workload {
  const fleet = createFleet({ accounts: o.accounts, resources: o.resources, seed: o.seed ?? 7 });
  // Windows end at or before the current whole hour: all in the past, none in the future.
  const endMs = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
  const startMs = endMs - o.hours * HOUR_MS;
  const batches = [
    ...generateSamples(fleet, {
      start: startMs,
      hours: o.hours,
      stepS: o.stepS ?? 60,
      batchSize: o.batchSize ?? 500,
      seed: o.seed ?? 7,
      duplicateRate: 0.01,
      invalidRate: 0.001,
    }),
  ];
  return {
    batches,
    accounts: fleet.accounts.map((a) => a.id),
    // A window ending exactly on `endMs` belongs to the hour before it: [start, end) covers all.
    fromMs: startMs,
    toMs: endMs,
    items: batches.reduce((n, b) => n + b.items.length, 0),
  };
}
