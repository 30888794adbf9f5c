/**
 * Turns a fleet into a stream of wire-format samples (schemas/sample.ts), in time order,
 * in batches. A generator, so 24 h × 1,000 resources (~4 M samples) never sits in memory:
 * at most one time step's batches and a handful of pending re-sends do.
 *
 * Into the stream it injects what real producers send: exact re-sends (same item in a
 * later batch, as after a lost 202), re-sends under a new id with the same natural key
 * (a collector restarted), optionally conflicting duplicates, and invalid items. Every
 * batch says which of its indexes are invalid or duplicates, so a driver can check the
 * ingest's per-item answers and compute exact expected totals (see expected.ts).
 *
 * Values and injections use separate random streams: changing an injection rate never
 * changes a valid sample's value.
 */
import type { Metric, SampleInput } from '../schemas/sample.js';
import { LIMITS } from '../schemas/sample.js';
import { METRIC_KINDS, wireScale } from '../schemas/metrics.js';
import type { Fleet, Resource } from './fleet.js';
import { makeInvalid } from './inject.js';
import { Rng, hashSeed } from './random.js';
import { type Traces, cpuFactor, loadTraces, netFactor } from './traces.js';

export interface GenerateOptions {
  /** Start of the first window: epoch ms, Date or RFC 3339. */
  start: number | Date | string;
  hours: number;
  /** Window length (interval_s), 1…3600; default 60. */
  stepS?: number;
  /** Default: the fleet's seed. */
  seed?: number;
  /** Items per batch (injected ones included); default 1000. */
  batchSize?: number;
  /** Share of samples re-sent later: half as exact copies, half under a new id. Default 0.001. */
  duplicateRate?: number;
  /** Share of samples followed by an invalid variant. Default 0.0005. */
  invalidRate?: number;
  /**
   * Share of samples followed, in the same batch, by a same-key sample with a different
   * value (the first stands, per DESIGN.md). Default 0: a conflict in a later batch would
   * race the original under concurrent POSTs and make expected totals ambiguous.
   */
  conflictRate?: number;
  /** Storage grows from this instant; pass the same value to chain runs. Default: start. */
  storageEpochMs?: number;
  traces?: Traces;
}

export interface SampleBatch {
  index: number;
  /** Wire items; the injected invalid ones are deliberately not `SampleInput`s. */
  items: unknown[];
  /** Items that pass validation, duplicates included: items.length = valid + invalid. */
  valid: number;
  /** Valid items that repeat an earlier sample's id or natural key (never billed). */
  duplicates: number;
  invalid: number;
  invalidIndexes: number[];
  duplicateIndexes: number[];
}

export function resolveStart(start: number | Date | string): number {
  const ms = start instanceof Date ? start.getTime() : typeof start === 'string' ? Date.parse(start) : start;
  if (!Number.isFinite(ms)) throw new Error(`invalid start: ${String(start)}`);
  return ms;
}

/** How many distinct samples a run produces: what billing must end up counting. */
export function countExpected(fleet: Fleet, opts: { hours: number; stepS?: number }): {
  steps: number;
  perStep: number;
  samples: number;
} {
  const steps = stepCount(opts.hours, opts.stepS ?? 60);
  const perStep = fleet.resources.reduce((n, r) => n + r.metrics.length, 0);
  return { steps, perStep, samples: steps * perStep };
}

export function* generateSamples(fleet: Fleet, opts: GenerateOptions): Generator<SampleBatch, void, undefined> {
  const stepS = opts.stepS ?? 60;
  const startMs = resolveStart(opts.start);
  const steps = stepCount(opts.hours, stepS);
  const batchSize = opts.batchSize ?? 1000;
  const dupRate = rate('duplicateRate', opts.duplicateRate ?? 0.001);
  const invalidRate = rate('invalidRate', opts.invalidRate ?? 0.0005);
  const conflictRate = rate('conflictRate', opts.conflictRate ?? 0);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error('batchSize must be a whole number ≥ 1');
  const seed = opts.seed ?? fleet.seed;
  const traces = opts.traces ?? loadTraces();
  const storageEpochMs = opts.storageEpochMs ?? startMs;
  const values = new Rng(hashSeed(seed, 'values'));
  const inject = new Rng(hashSeed(seed, 'inject'));
  // The five kinds that predate gpu (Enum8 codes 1–5) share the two streams above, as they
  // always have; each later kind draws from streams of its own, so adding a kind leaves
  // every earlier kind's values and injections for a seed exactly as they were.
  const own = new Map<Metric, { values: Rng; inject: Rng }>();
  const streams = (m: Metric) => {
    if (METRIC_KINDS[m].code <= 5) return { values, inject };
    let s = own.get(m);
    if (!s) own.set(m, (s = { values: new Rng(hashSeed(seed, 'values', m)), inject: new Rng(hashSeed(seed, 'inject', m)) }));
    return s;
  };

  // Per-step work is shared by every resource in a region: compute it once per offset.
  const offsets = [...new Set(fleet.resources.map((r) => r.utcOffsetMin))];
  const offsetIdx = fleet.resources.map((r) => offsets.indexOf(r.utcOffsetMin));

  const batches = new Batcher(batchSize);
  for (let step = 0; step < steps; step++) {
    const tsMs = startMs + (step + 1) * stepS * 1000;
    const iso = new Date(tsMs).toISOString();
    const cpuF = offsets.map((o) => cpuFactor(traces, tsMs, o));
    const isoLocal = offsets.map((o) => isoWithOffset(tsMs, o));
    const netIn = netFactor(traces.netIn, tsMs);
    const netOut = netFactor(traces.netOut, tsMs);

    fleet.resources.forEach((r, ri) => {
      const oi = offsetIdx[ri] as number;
      const f = r.profile.tsFormat;
      const ts = f === 'epoch_ms' ? tsMs : f === 'iso' ? iso : (isoLocal[oi] as string);
      const ctx = { stepS, tsMs, cpuF: cpuF[oi] as number, netIn, netOut, storageEpochMs };
      for (const metric of r.metrics) {
        const rng = streams(metric);
        const sample: SampleInput = {
          id: `${r.id}:${metric}:${tsMs}`,
          account_id: r.accountId,
          resource_id: r.id,
          resource_type: r.type,
          region: r.region,
          metric,
          value: valueOf(r, metric, ctx, rng.values),
          ts,
          interval_s: stepS,
          ...(r.attributes ? { attributes: r.attributes } : {}),
        };
        // Two draws per sample whatever the outcome, so injections stay reproducible.
        const d = rng.inject.next();
        const bad = rng.inject.next() < invalidRate;
        const conflict = d >= dupRate && d < dupRate + conflictRate && batches.room() >= 2;
        batches.add(sample, 'valid');
        if (conflict) batches.add({ ...sample, id: `${sample.id}:conflict`, value: bumped(sample) }, 'duplicate');
        if (d < dupRate / 2) batches.later(sample);
        else if (d < dupRate) batches.later({ ...sample, id: `${sample.id}:resent` });
        if (bad) batches.add(makeInvalid(sample, rng.inject), 'invalid');
      }
    });
    // Yield between steps, not inside forEach: a generator cannot yield from a callback.
    yield* batches.drainFull();
  }
  yield* batches.finish();
}

interface StepContext {
  stepS: number;
  tsMs: number;
  cpuF: number;
  netIn: number;
  netOut: number;
  storageEpochMs: number;
}

function valueOf(r: Resource, metric: Metric, c: StepContext, rng: Rng): number {
  const p = r.profile;
  switch (metric) {
    case 'cpu': {
      let util = p.cpuBaseUtil * Math.max(0.05, 1 + p.cpuDiurnal * (c.cpuF - 1)) * Math.exp(rng.normal(0, 0.15));
      if (rng.chance(0.002)) util = Math.max(util, rng.uniform(0.85, 1)); // a busy spell
      // Whole micro-vCPU-seconds, then one division: the double is the nearest one to a
      // ≤ 6-decimal number, so JSON prints exactly that decimal and parseSample accepts it.
      const micros = Math.round(p.vcpus * Math.min(1, util) * c.stepS * 1e6);
      return micros / 1e6;
    }
    case 'memory':
      return p.memoryBytes; // allocated, not used: constant for the instance type
    case 'storage': {
      const grown = Math.floor((p.storageGrowthPerHour * Math.max(0, c.tsMs - c.storageEpochMs)) / 3_600_000);
      return Math.min(LIMITS.maxByteValue, p.storageBaseBytes + grown);
    }
    case 'bandwidth_in':
    case 'bandwidth_out': {
      const net = metric === 'bandwidth_in' ? c.netIn : c.netOut;
      // The fleet trace is smooth (±10 %); a single resource is far burstier: amplify the
      // shape, follow the region's day a little, and add log-normal noise plus rare spikes.
      const shape = Math.max(0.05, 1 + 3 * (net - 1)) * Math.max(0.1, 1 + 0.5 * p.cpuDiurnal * (c.cpuF - 1));
      const sigma = p.burstiness;
      let bytes = (metric === 'bandwidth_in' ? p.bwInBytesPerS : p.bwOutBytesPerS) * c.stepS * shape;
      bytes *= Math.exp(rng.normal(-(sigma * sigma) / 2, sigma)); // mean-preserving
      if (rng.chance(0.003)) bytes *= rng.uniform(5, 30);
      return Math.min(LIMITS.maxByteValue, Math.round(bytes));
    }
    case 'gpu': {
      // Whole micro-GPU-seconds, like cpu: a job keeps its GPUs busy, with small jitter.
      const util = p.gpuBaseUtil * Math.exp(rng.normal(0, 0.1));
      return Math.round(p.gpus * Math.min(1, util) * c.stepS * 1e6) / 1e6;
    }
  }
}

/** A different but still valid value for the same metric: one unit (of its last decimal) more. */
function bumped(s: SampleInput): number {
  const scale = wireScale(s.metric);
  return scale === 1 ? s.value + 1 : (Math.round(s.value * scale) + 1) / scale;
}

/** RFC 3339 in a region's local time, e.g. `2026-11-28T17:30:00+05:30`: agents differ. */
export function isoWithOffset(tsMs: number, offsetMin: number): string {
  const local = new Date(tsMs + offsetMin * 60_000).toISOString().slice(0, 19);
  const abs = Math.abs(offsetMin);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${local}${offsetMin < 0 ? '-' : '+'}${hh}:${mm}`;
}

function stepCount(hours: number, stepS: number): number {
  if (!Number.isInteger(stepS) || stepS < 1 || stepS > LIMITS.maxIntervalS) {
    throw new Error(`stepS must be a whole number of seconds, 1…${LIMITS.maxIntervalS}`);
  }
  if (!(hours > 0) || !Number.isFinite(hours)) throw new Error('hours must be a positive number');
  return Math.floor((hours * 3600) / stepS);
}

function rate(name: string, v: number): number {
  if (!(v >= 0 && v <= 1)) throw new Error(`${name} must be between 0 and 1`);
  return v;
}

type Kind = 'valid' | 'duplicate' | 'invalid';

/** Fills fixed-size batches; re-sends wait in `pending` and open the next batch. */
class Batcher {
  private items: unknown[] = [];
  private invalidIndexes: number[] = [];
  private duplicateIndexes: number[] = [];
  private pending: SampleInput[] = [];
  private full: SampleBatch[] = [];
  private index = 0;

  constructor(private readonly size: number) {}

  room(): number {
    return this.size - this.items.length;
  }

  add(item: unknown, kind: Kind): void {
    if (kind === 'invalid') this.invalidIndexes.push(this.items.length);
    if (kind === 'duplicate') this.duplicateIndexes.push(this.items.length);
    this.items.push(item);
    if (this.items.length >= this.size) this.close();
  }

  /** Re-sent at the start of the next batch, as a producer retrying would. */
  later(sample: SampleInput): void {
    this.pending.push(sample);
  }

  *drainFull(): Generator<SampleBatch> {
    while (this.full.length > 0) yield this.full.shift() as SampleBatch;
  }

  *finish(): Generator<SampleBatch> {
    if (this.items.length > 0) this.close(); // moves pending re-sends into a last batch
    this.open(); // or, if the stream ended on a batch boundary, starts one for them
    if (this.items.length > 0) this.close();
    yield* this.drainFull();
  }

  private close(): void {
    const { items, invalidIndexes, duplicateIndexes } = this;
    this.full.push({
      index: this.index++,
      items,
      valid: items.length - invalidIndexes.length,
      duplicates: duplicateIndexes.length,
      invalid: invalidIndexes.length,
      invalidIndexes,
      duplicateIndexes,
    });
    this.items = [];
    this.invalidIndexes = [];
    this.duplicateIndexes = [];
    this.open();
  }

  private open(): void {
    const resend = this.pending;
    this.pending = [];
    for (const s of resend) this.add(s, 'duplicate');
  }
}
