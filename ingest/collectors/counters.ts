/**
 * Turns successive scrapes into per-window usage. State is kept per series (the last
 * counter value) and per group (one resource × one wire metric: when its last window
 * ended), scoped by target.
 *
 * The rules, each chosen so usage is never negative and never counted twice:
 *
 * - **Windows.** A group's window runs from its previous successful reading to this one:
 *   (lastSlot, slot]. The first reading of a group only sets the baseline and bills nothing
 *   (after a collector restart we cannot know what the previous process already billed).
 * - **Counters** bill the sum of per-series increases. Deltas are taken per series, never
 *   on a sum, so one interface disappearing cannot look like a reset of the others.
 * - **Counter reset.** A value lower than the last one means the counter restarted (reboot,
 *   VM restart, wrap). The delta is then the new value: usage since the restart. Usage
 *   between the last reading and the restart is unknown and not billed; nothing is doubled.
 *   A reset followed by growth past the old value within one window is indistinguishable
 *   from growth; that window under-bills the pre-restart remainder.
 * - **New series in a known group** (a NIC hot-plugged, a CPU onlined) was created within
 *   the window, so it counts from zero.
 * - **Missed scrapes** make one longer window: the counter delta covers the whole gap, the
 *   gauge value is held over it. Windows longer than 3600 s (the wire format's maximum) are
 *   cut at UTC hour boundaries; a counter's increase is shared out in proportion to time,
 *   in exact integers, the remainder going to the last piece.
 * - **Held is marked.** A counter's increase over a gap is measured (only its placement in
 *   hours is proportional). A gauge's is not: given the scrape interval, the part of its
 *   window before the last interval is a held reading, so it goes out as its own window
 *   marked `estimated: 'held'` (and a `held` event says how long). The cut never moves
 *   usage to another billing hour: where the last interval starts in an earlier hour than
 *   its piece ends, the whole piece is marked held instead (overstating held time by less
 *   than one interval, never understating it).
 * - **Long gaps.** Past `counterMaxGapS` (default 7 days) a counter is re-baselined rather
 *   than spread over days it cannot place. Past `gaugeMaxGapS` (default 1 hour) a gauge is
 *   not extrapolated: a host that was unreachable that long may have been down, and a gauge
 *   says nothing about the time it was not read. Both are reported as events.
 * - **Invalid readings** (NaN, ±Inf, negative) are skipped. A counter series keeps its old
 *   value, so its usage is billed in a later window; a gauge group keeps its old window
 *   start, so the next valid reading covers the gap.
 *
 * Values are tracked as integers in `scale` units (micro-vCPU-seconds, bytes) so sums are exact.
 */
import { HOUR_MS, usageHourOf } from '../../lib/time.js';
import type { Estimation } from '../../schemas/sample.js';

export interface SeriesReading {
  /** Unique within its group. */
  id: string;
  /** Raw exporter value, in the wire unit (seconds, bytes). */
  value: number;
  /** Gauges may subtract a term; counters are always +1. */
  sign: 1 | -1;
}

export interface GroupReading {
  /** One resource × one metric, unique within a scope. */
  key: string;
  kind: 'counter' | 'gauge';
  /** Integer units per wire unit: 1e6 for cpu, 1 for bytes. */
  scale: number;
  series: readonly SeriesReading[];
}

export interface UsageWindow {
  key: string;
  /** Exclusive start and inclusive end, epoch ms on whole seconds; at most one hour apart. */
  startMs: number;
  endMs: number;
  /** Usage in `scale` units: a counter's increase, or a gauge's level over the window. */
  units: bigint;
  scale: number;
  /** Set when the value was not measured over this window: a gauge held across missed scrapes. */
  estimated?: Estimation;
}

export type TrackerEvent =
  | { type: 'baseline'; key: string }
  | { type: 'reset'; key: string; series: string }
  | { type: 'new_series'; key: string; series: string }
  | { type: 'invalid'; key: string; series?: string; reason: string }
  | { type: 'gap_not_filled'; key: string; gapS: number }
  | { type: 'held'; key: string; heldS: number }
  | { type: 'stale'; key: string };

export interface TrackerOptions {
  /** Longest gap a counter's increase is spread over; beyond it the counter is re-baselined. */
  counterMaxGapS?: number;
  /** Longest gap a gauge value is held over; beyond it that window is not billed. */
  gaugeMaxGapS?: number;
}

export interface ObserveOptions {
  /**
   * The scrape interval. A gauge window longer than this spans missed scrapes: its part
   * before the last interval is marked held. Without it nothing is marked.
   */
  intervalMs?: number;
}

export interface ObserveResult {
  windows: UsageWindow[];
  events: TrackerEvent[];
}

interface GroupState {
  lastSlotMs: number;
}
interface SeriesState {
  units: bigint;
  seenMs: number;
}
interface ScopeState {
  groups: Map<string, GroupState>;
  series: Map<string, SeriesState>;
}

const MAX_WINDOW_MS = HOUR_MS;

export class UsageTracker {
  private readonly scopes = new Map<string, ScopeState>();
  private readonly counterMaxGapMs: number;
  private readonly gaugeMaxGapMs: number;

  constructor(opts: TrackerOptions = {}) {
    this.counterMaxGapMs = (opts.counterMaxGapS ?? 7 * 86_400) * 1000;
    this.gaugeMaxGapMs = (opts.gaugeMaxGapS ?? 3_600) * 1000;
  }

  /**
   * Records the readings of one scrape of `scope` (a target) taken at `slotMs` and returns
   * the usage windows they close. Groups absent from `readings` keep their state: when they
   * come back, their window spans the absence.
   */
  observe(scope: string, slotMs: number, readings: readonly GroupReading[], opts: ObserveOptions = {}): ObserveResult {
    if (!Number.isInteger(slotMs / 1000)) throw new RangeError('slotMs must fall on a whole second');
    let state = this.scopes.get(scope);
    if (!state) this.scopes.set(scope, (state = { groups: new Map(), series: new Map() }));
    const out: ObserveResult = { windows: [], events: [] };
    for (const g of readings) {
      const group = state.groups.get(g.key);
      if (group && slotMs <= group.lastSlotMs) {
        out.events.push({ type: 'stale', key: g.key });
        continue;
      }
      if (g.kind === 'counter') this.counter(state, g, group, slotMs, out);
      else this.gauge(state, g, group, slotMs, out, opts.intervalMs);
    }
    this.evict(state, slotMs);
    return out;
  }

  /** Drops all state of a scope (a target removed from the list). */
  forget(scope: string): void {
    this.scopes.delete(scope);
  }

  /** How much state is held, for metrics. */
  size(): { groups: number; series: number } {
    let groups = 0;
    let series = 0;
    for (const s of this.scopes.values()) {
      groups += s.groups.size;
      series += s.series.size;
    }
    return { groups, series };
  }

  private counter(state: ScopeState, g: GroupReading, group: GroupState | undefined, slotMs: number, out: ObserveResult): void {
    const gapMs = group ? slotMs - group.lastSlotMs : 0;
    const baseline = !group || gapMs > this.counterMaxGapMs;
    if (!group) out.events.push({ type: 'baseline', key: g.key });
    else if (baseline) out.events.push({ type: 'gap_not_filled', key: g.key, gapS: gapMs / 1000 });

    let total = 0n;
    for (const s of g.series) {
      const units = toUnits(s.value, g.scale);
      if (units === undefined) {
        out.events.push({ type: 'invalid', key: g.key, series: s.id, reason: `counter value ${s.value} is not a finite number ≥ 0` });
        continue;
      }
      const seriesKey = `${g.key}\u0000${s.id}`;
      const prev = state.series.get(seriesKey);
      state.series.set(seriesKey, { units, seenMs: slotMs });
      if (baseline) continue;
      if (!prev) {
        out.events.push({ type: 'new_series', key: g.key, series: s.id });
        total += units;
      } else if (units >= prev.units) {
        total += units - prev.units;
      } else {
        out.events.push({ type: 'reset', key: g.key, series: s.id });
        total += units;
      }
    }
    if (!baseline) {
      const start = group!.lastSlotMs;
      for (const piece of shareAcrossWindow(start, slotMs, total)) out.windows.push({ key: g.key, ...piece, scale: g.scale });
    }
    state.groups.set(g.key, { lastSlotMs: slotMs });
  }

  private gauge(state: ScopeState, g: GroupReading, group: GroupState | undefined, slotMs: number, out: ObserveResult, intervalMs?: number): void {
    let level = 0n;
    for (const s of g.series) {
      const units = toUnits(s.value, g.scale);
      if (units === undefined) {
        // Keep the old window start: the next valid reading covers this one's time.
        out.events.push({ type: 'invalid', key: g.key, series: s.id, reason: `gauge value ${s.value} is not a finite number ≥ 0` });
        return;
      }
      level += s.sign === -1 ? -units : units;
    }
    if (level < 0n) {
      out.events.push({ type: 'invalid', key: g.key, reason: 'gauge terms sum to a negative value' });
      return;
    }
    if (!group) {
      out.events.push({ type: 'baseline', key: g.key });
    } else if (slotMs - group.lastSlotMs > this.gaugeMaxGapMs) {
      out.events.push({ type: 'gap_not_filled', key: g.key, gapS: (slotMs - group.lastSlotMs) / 1000 });
    } else {
      // Before this instant the reading is held across missed scrapes; after it, measured.
      const measuredFrom = intervalMs !== undefined && slotMs - group.lastSlotMs > intervalMs ? slotMs - intervalMs : group.lastSlotMs;
      let heldMs = 0;
      for (const [a, b] of splitWindow(group.lastSlotMs, slotMs)) {
        for (const piece of splitHeld(a, b, measuredFrom)) {
          const w: UsageWindow = { key: g.key, startMs: piece.startMs, endMs: piece.endMs, units: level, scale: g.scale };
          if (piece.held) {
            w.estimated = 'held';
            heldMs += piece.endMs - piece.startMs;
          }
          out.windows.push(w);
        }
      }
      if (heldMs > 0) out.events.push({ type: 'held', key: g.key, heldS: heldMs / 1000 });
    }
    state.groups.set(g.key, { lastSlotMs: slotMs });
  }

  /** State older than the longest gap we would fill is useless: a comeback is re-baselined anyway. */
  private evict(state: ScopeState, slotMs: number): void {
    const horizon = slotMs - Math.max(this.counterMaxGapMs, this.gaugeMaxGapMs);
    for (const [k, g] of state.groups) if (g.lastSlotMs < horizon) state.groups.delete(k);
    for (const [k, s] of state.series) if (s.seenMs < horizon) state.series.delete(k);
  }
}

/**
 * One piece (start, end] of a gauge window, cut where the held part ends (`measuredFrom`):
 * held before it, measured after it. Cut only when both parts stay in the billing hour
 * the piece is billed in; otherwise the piece is held whole (see "Held is marked").
 */
function splitHeld(startMs: number, endMs: number, measuredFrom: number): Array<{ startMs: number; endMs: number; held: boolean }> {
  if (measuredFrom <= startMs) return [{ startMs, endMs, held: false }];
  if (measuredFrom >= endMs || usageHourOf(measuredFrom) !== usageHourOf(endMs)) return [{ startMs, endMs, held: true }];
  return [
    { startMs, endMs: measuredFrom, held: true },
    { startMs: measuredFrom, endMs, held: false },
  ];
}

function toUnits(value: number, scale: number): bigint | undefined {
  if (!Number.isFinite(value) || value < 0) return undefined;
  return BigInt(Math.round(value * scale));
}

/**
 * (start, end] as one piece when it fits the wire format's 3600 s, otherwise cut at UTC
 * hour boundaries, so every piece also falls in a single billing hour.
 */
export function splitWindow(startMs: number, endMs: number): Array<[number, number]> {
  if (endMs - startMs <= MAX_WINDOW_MS) return [[startMs, endMs]];
  const pieces: Array<[number, number]> = [];
  let a = startMs;
  while (a < endMs) {
    const b = Math.min(endMs, (Math.floor(a / HOUR_MS) + 1) * HOUR_MS);
    pieces.push([a, b]);
    a = b;
  }
  return pieces;
}

/**
 * `units` used over (start, end], cut as splitWindow cuts it, each piece its exact
 * proportional share in integer arithmetic; the last piece takes what the others leave,
 * so the pieces add up to `units` exactly. One definition for the collectors' counters
 * and OTLP's delta points.
 */
export function shareAcrossWindow(startMs: number, endMs: number, units: bigint): Array<{ startMs: number; endMs: number; units: bigint }> {
  const pieces = splitWindow(startMs, endMs);
  const span = BigInt(endMs - startMs);
  let given = 0n;
  return pieces.map(([a, b], i) => {
    const share = i === pieces.length - 1 ? units - given : (units * BigInt(b - a)) / span;
    given += share;
    return { startMs: a, endMs: b, units: share };
  });
}
