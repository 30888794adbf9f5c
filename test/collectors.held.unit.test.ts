/**
 * Held gauge readings are marked (issue 17): a gauge window that spans missed scrapes goes
 * out as a held part and a measured last interval, with the same usage in the same billing
 * hours as one unmarked window would have had. Expected figures are worked out by hand.
 */
import { describe, expect, it } from 'vitest';
import { UsageTracker, type GroupReading, type UsageWindow } from '../ingest/collectors/counters.js';
import { windowsToSamples, type WindowOwner } from '../ingest/collectors/samples.js';
import { gapSecondsOf } from '../ingest/collectors/target-status.js';
import { usageHourOf } from '../lib/time.js';
import { parseSample } from '../schemas/sample.js';

const T0 = Date.UTC(2025, 0, 1, 10, 0, 0); // 10:00:00Z
const S = 1000;
const gauge = (bytes: number): GroupReading => ({ key: 'mem', kind: 'gauge', scale: 1, series: [{ id: 'total', value: bytes, sign: 1 }] });
const counter = (seconds: number): GroupReading => ({ key: 'cpu', kind: 'counter', scale: 1e6, series: [{ id: 'cpu0', value: seconds, sign: 1 }] });
const shape = (ws: UsageWindow[]) => ws.map((w) => ({ from: (w.startMs - T0) / S, to: (w.endMs - T0) / S, units: w.units, held: w.estimated === 'held' }));

/** Byte-seconds per billing hour: what a bill sees of a gauge's windows. */
function perHour(ws: UsageWindow[]): Record<number, bigint> {
  const out: Record<number, bigint> = {};
  for (const w of ws) {
    const h = usageHourOf(w.endMs);
    out[h] = (out[h] ?? 0n) + w.units * BigInt((w.endMs - w.startMs) / S);
  }
  return out;
}

describe('held gauge readings', () => {
  it('marks the missed part of a gauge window and leaves the last interval measured', () => {
    const t = new UsageTracker();
    const iv = { intervalMs: 60 * S };
    t.observe('x', T0 + 60 * S, [gauge(1000)], iv);
    // On time: one measured window.
    expect(shape(t.observe('x', T0 + 120 * S, [gauge(1000)], iv).windows)).toEqual([{ from: 60, to: 120, units: 1000n, held: false }]);
    // 65 s of outage: the slots at 180 and 240 are missed, the reading at 300 is held back to 120.
    const r = t.observe('x', T0 + 300 * S, [gauge(2000)], iv);
    expect(shape(r.windows)).toEqual([
      { from: 120, to: 240, units: 2000n, held: true },
      { from: 240, to: 300, units: 2000n, held: false },
    ]);
    expect(r.events).toContainEqual({ type: 'held', key: 'mem', heldS: 120 });
    expect(gapSecondsOf(r.events)).toEqual({ filled: 120, unfilled: 0 });
  });

  it('bills exactly what one unmarked window billed, in the same hours', () => {
    for (const [from, to] of [
      [120, 300], // inside one hour
      [3000, 3720], // ends 2 min into the next hour: the measured minute stays in it
      [3000, 3600], // ends on the hour: everything is in the hour before
      [1800, 9000], // longer than an hour: cut at the hours, then the held part
    ] as const) {
      const marked = new UsageTracker({ gaugeMaxGapS: 4 * 3600 });
      const plain = new UsageTracker({ gaugeMaxGapS: 4 * 3600 });
      for (const [tr, iv] of [[marked, { intervalMs: 60 * S }], [plain, {}]] as const) t0(tr, from, iv);
      const a = marked.observe('x', T0 + to * S, [gauge(7)], { intervalMs: 60 * S }).windows;
      const b = plain.observe('x', T0 + to * S, [gauge(7)]).windows;
      expect(b.some((w) => w.estimated)).toBe(false); // without the interval nothing is marked (OTLP and other reuses)
      expect(perHour(a)).toEqual(perHour(b));
      const heldS = a.filter((w) => w.estimated === 'held').reduce((n, w) => n + (w.endMs - w.startMs) / S, 0);
      expect(heldS).toBe(to - from - 60);
    }
    function t0(tr: UsageTracker, from: number, iv: { intervalMs?: number }) {
      tr.observe('x', T0 + from * S, [gauge(7)], iv);
    }
  });

  it('holds a whole piece rather than move usage into another hour', () => {
    // Interval 7 s, not a divisor of the hour: the last interval (3598, 3605] starts in the
    // hour before the one its piece (3500, 3605] is billed in, so the piece is held whole.
    const t = new UsageTracker();
    t.observe('x', T0 + 3500 * S, [gauge(5)], { intervalMs: 7 * S });
    const r = t.observe('x', T0 + 3605 * S, [gauge(5)], { intervalMs: 7 * S });
    expect(shape(r.windows)).toEqual([{ from: 3500, to: 3605, units: 5n, held: true }]);
  });

  it('never marks counters: their increase over a gap is measured', () => {
    const t = new UsageTracker();
    t.observe('x', T0 + 60 * S, [counter(10)], { intervalMs: 60 * S });
    const r = t.observe('x', T0 + 300 * S, [counter(34)], { intervalMs: 60 * S });
    expect(shape(r.windows)).toEqual([{ from: 60, to: 300, units: 24_000_000n, held: false }]);
    expect(r.events.some((e) => e.type === 'held')).toBe(false);
  });

  it('counts a gap too long to fill as unfilled seconds, and the longest group once', () => {
    const t = new UsageTracker();
    t.observe('x', T0, [gauge(1), { ...gauge(2), key: 'disk' }], { intervalMs: 60 * S });
    const r = t.observe('x', T0 + 7200 * S, [gauge(1), { ...gauge(2), key: 'disk' }], { intervalMs: 60 * S });
    expect(r.windows).toEqual([]);
    expect(gapSecondsOf(r.events)).toEqual({ filled: 0, unfilled: 7200 });
  });

  it('puts the mark on the wire sample, which the wire format accepts', () => {
    const owner: WindowOwner = {
      identity: { account_id: 'a', resource_id: 'r', resource_type: 'vm', region: 'eu-west-1', attributes: {} },
      metric: 'memory',
    };
    const measured: UsageWindow = { key: 'mem', startMs: T0 + 120 * S, endMs: T0 + 180 * S, units: 4096n, scale: 1 };
    const held: UsageWindow = { ...measured, startMs: T0, endMs: T0 + 120 * S, estimated: 'held' };
    const { samples } = windowsToSamples({ mappingRef: 'node_exporter@1', targetId: 't' }, new Map([['mem', owner]]), [held, measured]);
    expect(samples.map((s) => s.estimated)).toEqual(['held', undefined]);
    const parsed = samples.map((s) => parseSample(s, T0 + 200 * S));
    expect(parsed.map((p) => p.ok && p.sample.estimated)).toEqual(['held', undefined]);
    // Only the known marks: a producer cannot invent provenance.
    const bad = parseSample({ ...samples[0], estimated: 'guessed' }, T0 + 200 * S);
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.errors[0]).toEqual({ path: 'estimated', message: 'estimated must be one of held (or absent: measured)' });
  });
});
