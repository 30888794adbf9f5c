/**
 * A Resource's usage windows between billing and the samples: the bookkeeping that makes
 * windows of one group ending at the same instant one sample, and the cut of a delta
 * point's window at UTC hours. Kept apart so the integer arithmetic of a share is in one
 * place: no binary floating point between a point's value and a bill.
 *
 * Delta monotonic sums are used as they are: each point's (start, time] is a window, its
 * value the usage in it. Windows longer than an hour are cut at UTC hours with the
 * counter's exact proportional share (counters.ts shareAcrossWindow), the last piece taking
 * what the others leave, so the pieces add up to the point's usage exactly.
 */
import type { UsageWindow } from '../collectors/counters.js';
import { shareAcrossWindow } from '../collectors/counters.js';
import type { WindowOwner } from '../collectors/samples.js';

/** group key + window end → the window, who it bills, and the data points behind it. */
export type WindowMap = Map<string, { window: UsageWindow; owner: WindowOwner; points: number }>;

/** Windows of one group ending at the same instant are one sample: their usage adds up. */
export function addWindow(windows: WindowMap, w: UsageWindow, owner: WindowOwner, points: number): void {
  const k = `${w.key}\u0000${w.endMs}`;
  const prev = windows.get(k);
  if (!prev) windows.set(k, { window: { ...w }, owner, points });
  else {
    prev.window.units += w.units;
    prev.window.startMs = Math.min(prev.window.startMs, w.startMs);
    prev.points += points;
  }
}

/** One delta group's usage over (startMs, endMs], in `scale` units. */
export interface DeltaUsage {
  key: string;
  startMs: number;
  endMs: number;
  units: bigint;
  scale: number;
}

/** Adds a delta group's usage, cut at UTC hours, each piece its exact proportional share. */
export function addDeltaWindows(windows: WindowMap, usage: DeltaUsage, owner: WindowOwner, points: number): void {
  const { key, startMs, endMs, units, scale } = usage;
  for (const piece of shareAcrossWindow(startMs, endMs, units)) addWindow(windows, { key, ...piece, scale }, owner, points);
}
