/**
 * One step of a cumulative or gauge group, billed from the previous state the shared
 * state handed back (shared-state.ts): by the collectors' own rules (counters.ts
 * UsageTracker: per-series increases, a lower value a reset, long gaps re-baselined,
 * windows cut at UTC hours), replayed on a tracker that is told the previous reading.
 *
 * What a counter series' previous value is taken to be, the OTLP start time deciding:
 *
 * - same start time as stored: the stored value (a lower value is then a reset, as today);
 * - a new start time after the stored reading's time: 0, all of the new value is usage
 *   since the restart, inside this window (the "new start time = reset" rule);
 * - a new start time at or before the stored reading's time: the new value itself (bills
 *   nothing now, the next step bills from it). Two exporters sharing one Resource identity
 *   interleave like this; billing their difference would bill what neither used;
 * - no stored series in a known group: 0 (counts from zero, as a hot-plugged NIC) when it
 *   started after the group's last reading, or after every reading of the scope's state
 *   ever dropped (its floor); otherwise its value itself, since part of it may have been billed
 *   before that state was dropped.
 *
 * Every case that is not sure bills less, never more.
 */
import { UsageTracker, type GroupReading, type ObserveResult, type TrackerOptions } from '../collectors/counters.js';
import type { GroupRecord, SeriesRecord, StepOutcome } from './shared-state.js';

export interface PlannedSeries {
  /** The reading's series id (apply.ts: `<term>:<series key>`). */
  id: string;
  startNs: bigint;
  timeNs: bigint;
}

export interface StepBill extends ObserveResult {
  /** Series whose new start time was taken as a reset. */
  restarts: number;
}

const NS_PER_MS = 1_000_000n;

/**
 * `reading` holds only valid values (validReading below); `series[i]` belongs to
 * reading.series[i]. Only a "next" outcome bills.
 */
export function billStep(
  reading: GroupReading,
  series: readonly PlannedSeries[],
  slotMs: number,
  outcome: Extract<StepOutcome, { kind: 'next' }>,
  trackerOptions: TrackerOptions,
): StepBill {
  let restarts = 0;
  const previous: GroupReading =
    reading.kind === 'gauge'
      ? reading
      : {
          ...reading,
          series: reading.series.map((s, i) => {
            const was = previousValue(series[i]!, s.value, outcome.series[i], outcome.group, outcome.floorMs);
            if (was.restart) restarts++;
            return { ...s, value: was.value };
          }),
        };
  const tracker = new UsageTracker(trackerOptions);
  tracker.observe('step', outcome.group.slotMs, [previous]);
  return { ...tracker.observe('step', slotMs, [reading]), restarts };
}

function previousValue(now: PlannedSeries, value: number, stored: SeriesRecord | undefined, group: GroupRecord, floorMs: number): { value: number; restart?: true } {
  if (stored) {
    if (stored.startNs === now.startNs) return { value: stored.value };
    return now.startNs > stored.timeNs ? { value: 0, restart: true } : { value };
  }
  // After every reading of the floor's second: no dropped state can have billed any of it.
  const afterFloor = floorMs === 0 || now.startNs >= BigInt(floorMs + 1000) * NS_PER_MS;
  return now.startNs > group.timeNs || afterFloor ? { value: 0 } : { value };
}

export type Validity = { ok: GroupReading } | { ok?: GroupReading; invalid: Array<{ series?: string; reason: string }> };

/**
 * The reading without what the tracker would refuse, decided before the state moves: an
 * invalid counter series keeps its stored value (its usage lands in a later window); an
 * invalid gauge leaves the whole group as it was (the next valid reading covers the gap).
 * The reasons are the tracker's own words.
 */
export function validReading(reading: GroupReading): Validity {
  const bad = (s: { value: number }) => !Number.isFinite(s.value) || s.value < 0;
  if (reading.kind === 'counter') {
    const invalid = reading.series.filter(bad).map((s) => ({ series: s.id, reason: `counter value ${s.value} is not a finite number ≥ 0` }));
    if (invalid.length === 0) return { ok: reading };
    const valid = reading.series.filter((s) => !bad(s));
    return valid.length > 0 ? { ok: { ...reading, series: valid }, invalid } : { invalid };
  }
  const first = reading.series.find(bad);
  if (first) return { invalid: [{ series: first.id, reason: `gauge value ${first.value} is not a finite number ≥ 0` }] };
  let level = 0n;
  for (const s of reading.series) level += BigInt(Math.round(s.value * reading.scale)) * BigInt(s.sign);
  if (level < 0n) return { invalid: [{ reason: 'gauge terms sum to a negative value' }] };
  return { ok: reading };
}
