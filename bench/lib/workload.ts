/**
 * The benchmark's workloads, all from the product's own fleet simulator (sim/), so the
 * engine limit, the end-to-end run and the microbenchmarks see the same rows:
 *
 *   replay  the demo's fleet (100 accounts, 1,000 resources, 60-second samples) over the
 *           last N hours, with the simulator's default re-sends and invalid items: history
 *           pushed as fast as the pipeline takes it. Each hour holds ~156k samples.
 *   live    a fleet sized so it produces the offered rate with 1-second windows whose `ts`
 *           follow the wall clock: every sample lands in the current hour, as it would in
 *           production at that rate (the current hour keeps growing).
 */
import { randomUUID } from 'node:crypto';
import { toBatchJob } from '../../ingest/accept.js';
import type { BatchJob } from '../../schemas/queues.js';
import { parseSample, type NormalizedSample } from '../../schemas/sample.js';
import { countExpected, createFleet, generateSamples, loadTraces, type Fleet, type SampleBatch } from '../../sim/index.js';

const HOUR_MS = 3_600_000;

export interface WorkloadSpec {
  kind: 'replay' | 'live';
  accounts: number;
  resources: number;
  hours: number;
  stepS: number;
  seed: number;
  startMs: number;
  /** Items per batch (request or insert). */
  batchSize: number;
  /** Stop after this many items (the live workload is cut to rate × duration). */
  maxItems?: number;
}

/** The demo's fleet over the last `hours` full hours. */
export function replaySpec(hours: number, batchSize: number): WorkloadSpec {
  const end = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
  return { kind: 'replay', accounts: 100, resources: 1000, hours, stepS: 60, seed: 42, startMs: end - hours * HOUR_MS, batchSize };
}

/** Replay of just enough hours to hold `items` samples. */
export function replaySpecForItems(items: number, batchSize: number): WorkloadSpec {
  const perHour = countExpected(createFleet({ accounts: 100, resources: 1000, seed: 42 }), { hours: 1, stepS: 60 }).samples;
  const hours = Math.max(1, Math.ceil((items * 1.01) / perHour));
  return { ...replaySpec(hours, batchSize), maxItems: items };
}

/**
 * A fleet whose one-second step holds `ratePerS` samples: sent at that rate, `ts` keeps pace
 * with the clock (never in the future, which ingest refuses beyond 5 minutes).
 */
export function liveSpec(ratePerS: number, seconds: number, batchSize: number): WorkloadSpec {
  const trial = createFleet({ accounts: 100, resources: 1000, seed: 7 });
  const perResource = countExpected(trial, { hours: 1, stepS: 3600 }).perStep / 1000;
  const resources = Math.max(100, Math.round(ratePerS / perResource));
  const items = Math.ceil(ratePerS * seconds);
  return {
    kind: 'live',
    accounts: Math.max(10, Math.round(resources / 10)),
    resources,
    hours: (seconds * 1.2 + 60) / 3600,
    stepS: 1,
    seed: 7,
    // The first windows end about now; later ones as the run proceeds.
    startMs: Date.now() - 2000,
    batchSize,
    maxItems: items,
  };
}

export function fleetOf(spec: WorkloadSpec): Fleet {
  return createFleet({ accounts: spec.accounts, resources: spec.resources, seed: spec.seed });
}

/** The simulator's batches, with its default re-sends (0.1 %) and invalid items (0.05 %). */
export function* simBatches(spec: WorkloadSpec): Generator<SampleBatch> {
  const traces = loadTraces();
  let items = 0;
  for (const b of generateSamples(fleetOf(spec), { start: spec.startMs, hours: spec.hours, stepS: spec.stepS, seed: spec.seed, batchSize: spec.batchSize, traces })) {
    if (spec.maxItems !== undefined && items >= spec.maxItems) return;
    items += b.items.length;
    yield b;
  }
}

export interface Bodies {
  bodies: Buffer[];
  items: number;
  /** Items the ingest should accept (valid, re-sends included). */
  valid: number;
}

/** Request bodies exactly as the simulator's POST sends them: `{ "samples": [...] }`. */
export function requestBodies(spec: WorkloadSpec): Bodies {
  const out: Bodies = { bodies: [], items: 0, valid: 0 };
  for (const b of simBatches(spec)) {
    out.bodies.push(Buffer.from(JSON.stringify({ samples: b.items })));
    out.items += b.items.length;
    out.valid += b.valid;
  }
  return out;
}

/** Validated samples of each batch, as ingest keeps them. */
export function* validBatches(spec: WorkloadSpec, nowMs = Date.now()): Generator<NormalizedSample[]> {
  for (const b of simBatches(spec)) {
    const valid: NormalizedSample[] = [];
    for (const item of b.items) {
      const r = parseSample(item, nowMs);
      if (r.ok) valid.push(r.sample);
    }
    yield valid;
  }
}

/** The raw billing rows of each batch, pre-serialized by ingest's own `toBatchJob`. */
export function rawRowBatches(spec: WorkloadSpec, nowMs = Date.now()): { batches: Array<Pick<BatchJob, 'rows' | 'rowFormat'>>; rows: number; bytes: number } {
  const batches: Array<Pick<BatchJob, 'rows' | 'rowFormat'>> = [];
  let rows = 0;
  let bytes = 0;
  let seq = 0;
  for (const valid of validBatches(spec, nowMs)) {
    const job = toBatchJob(randomUUID(), ++seq, nowMs, valid);
    batches.push(job.rowFormat === undefined ? { rows: job.rows } : { rows: job.rows, rowFormat: job.rowFormat });
    rows += job.rowCount;
    bytes += job.rows.length;
  }
  return { batches, rows, bytes };
}
