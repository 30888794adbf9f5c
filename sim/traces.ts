/**
 * Real fleet-usage shapes for the simulator, from the public traces in shared/data
 * (see its README.md). Those are whole-datacenter totals every 5 minutes; we keep only
 * their *shape* (normalized to mean 1) and let samples.ts scale it per resource:
 *
 * - CPU: the Azure 2019 VM trace's `cpu_usage`, folded into one week of 5-minute buckets
 *   (the trace is a month, so each bucket averages ~4 weeks), rotated so index 0 is
 *   Sunday 00:00 local time. Read in each region's local time, it gives diurnal and
 *   weekly swings that look like a real fleet's.
 * - Bandwidth: the Alibaba 2018 trace's `net_in` / `net_out`, kept as a series and looped.
 *
 * If a file is missing the simulator falls back to a synthetic shape of the same form,
 * so it never depends on the data being present (e.g. when run from a built `dist/`,
 * where the relative path no longer reaches shared/). A file that exists but is malformed
 * is an error: silently simulating something else would hide it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from './random.js';

export const BUCKET_MS = 300_000;
const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;
const BUCKETS_PER_DAY = DAY_MS / BUCKET_MS; // 288
const BUCKETS_PER_WEEK = WEEK_MS / BUCKET_MS; // 2016

export const TRACE_FILES = {
  azure: 'azure2019_vm_fleet_month_300s.csv',
  alibaba: 'alibaba2018_machine_usage_days_1_to_8_300s.csv',
} as const;

/** `shared/` is a sibling of the repository root, so from sim/ it is two levels up. */
export const DEFAULT_TRACE_DIR = new URL('../../shared/data/', import.meta.url);

export interface Traces {
  source: { cpu: 'azure2019' | 'synthetic'; net: 'alibaba2018' | 'synthetic' };
  /** One week of 5-minute buckets from Sunday 00:00 local time, mean 1. */
  cpuWeek: Float64Array;
  /** Consecutive 5-minute buckets, mean 1, looped over absolute time. */
  netIn: Float64Array;
  netOut: Float64Array;
}

export interface TraceOptions {
  /** Directory holding the CSV files; defaults to shared/data beside the repository. */
  dataDir?: string | URL;
}

const cache = new Map<string, Traces>();

/** Reads the traces once per directory and caches them: each file is a few hundred KB. */
export function loadTraces(opts: TraceOptions = {}): Traces {
  const dir = toDirPath(opts.dataDir ?? DEFAULT_TRACE_DIR);
  const cached = cache.get(dir);
  if (cached) return cached;

  const azure = readCsv(dir + TRACE_FILES.azure, ['cpu_usage']);
  const alibaba = readCsv(dir + TRACE_FILES.alibaba, ['net_in', 'net_out']);
  const synthetic = azure && alibaba ? undefined : syntheticTraces();

  const traces: Traces = {
    source: { cpu: azure ? 'azure2019' : 'synthetic', net: alibaba ? 'alibaba2018' : 'synthetic' },
    cpuWeek: azure ? weeklyShape(azure.cpu_usage as Float64Array, dir + TRACE_FILES.azure) : synthetic!.cpuWeek,
    netIn: alibaba ? normalize(alibaba.net_in as Float64Array) : synthetic!.netIn,
    netOut: alibaba ? normalize(alibaba.net_out as Float64Array) : synthetic!.netOut,
  };
  cache.set(dir, traces);
  return traces;
}

/** CPU shape at a window end, in the local time of a region `utcOffsetMin` from UTC. */
export function cpuFactor(traces: Traces, tsMs: number, utcOffsetMin: number): number {
  // Epoch day 0 (1970-01-01) was a Thursday: +4 days puts Sunday 00:00 at position 0.
  const local = tsMs + utcOffsetMin * 60_000 + 4 * DAY_MS;
  return interpolate(traces.cpuWeek, mod(local, WEEK_MS) / BUCKET_MS);
}

/** Bandwidth shape at a window end; the series loops, anchored at the Unix epoch. */
export function netFactor(series: Float64Array, tsMs: number): number {
  return interpolate(series, mod(tsMs / BUCKET_MS, series.length));
}

/** Mean CPU shape per local hour of day (24 values): for diagnostics and tests. */
export function dailyProfile(traces: Traces): number[] {
  const sums = new Array<number>(24).fill(0);
  const counts = new Array<number>(24).fill(0);
  traces.cpuWeek.forEach((v, i) => {
    const hour = Math.floor((i % BUCKETS_PER_DAY) / 12);
    sums[hour] = (sums[hour] ?? 0) + v;
    counts[hour] = (counts[hour] ?? 0) + 1;
  });
  return sums.map((s, h) => s / (counts[h] ?? 1));
}

function toDirPath(dir: string | URL): string {
  const p = dir instanceof URL ? fileURLToPath(dir) : dir;
  return p.endsWith('/') ? p : `${p}/`;
}

/** Returns the named numeric columns, or undefined when the file does not exist. */
function readCsv(path: string, columns: readonly string[]): Record<string, Float64Array> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = (lines[0] ?? '').split(',').map((h) => h.trim());
  const idx = columns.map((c) => {
    const i = header.indexOf(c);
    if (i < 0) throw new Error(`trace ${path}: missing column ${c}`);
    return i;
  });
  const out: Record<string, Float64Array> = {};
  for (const c of columns) out[c] = new Float64Array(lines.length - 1);
  for (let r = 1; r < lines.length; r++) {
    const cells = (lines[r] as string).split(',');
    columns.forEach((c, k) => {
      const v = Number(cells[idx[k] as number]);
      if (!Number.isFinite(v) || v < 0) throw new Error(`trace ${path}: line ${r + 1}: bad ${c} value`);
      (out[c] as Float64Array)[r - 1] = v;
    });
  }
  if (lines.length - 1 < BUCKETS_PER_DAY) throw new Error(`trace ${path}: fewer than one day of rows`);
  return out;
}

/**
 * Folds a series of 5-minute buckets into one week, then rotates it so the two quietest
 * consecutive days land on Saturday and Sunday: the trace's start weekday is not
 * published, but a fleet's weekend dip is unmistakable (Azure's is ~7% below weekdays).
 */
function weeklyShape(series: Float64Array, path: string): Float64Array {
  if (series.length < BUCKETS_PER_WEEK) throw new Error(`trace ${path}: fewer than 7 days of rows`);
  const sums = new Float64Array(BUCKETS_PER_WEEK);
  const counts = new Float64Array(BUCKETS_PER_WEEK);
  series.forEach((v, i) => {
    sums[i % BUCKETS_PER_WEEK]! += v;
    counts[i % BUCKETS_PER_WEEK]! += 1;
  });
  const folded = sums.map((s, i) => s / counts[i]!);

  const dayMeans = Array.from({ length: 7 }, (_, d) =>
    mean(folded.subarray(d * BUCKETS_PER_DAY, (d + 1) * BUCKETS_PER_DAY)),
  );
  let saturday = 0;
  for (let d = 1; d < 7; d++) {
    const pair = (i: number) => dayMeans[i]! + dayMeans[(i + 1) % 7]!;
    if (pair(d) < pair(saturday)) saturday = d;
  }
  const sunday = (saturday + 1) % 7;
  const rotated = new Float64Array(BUCKETS_PER_WEEK);
  for (let k = 0; k < BUCKETS_PER_WEEK; k++) {
    rotated[k] = folded[(k + sunday * BUCKETS_PER_DAY) % BUCKETS_PER_WEEK]!;
  }
  return normalize(rotated);
}

/**
 * Stand-in shapes of the same form as the real ones: a daytime peak around 15:00 local,
 * a quieter weekend, and slowly wandering bandwidth. Fixed seed: always the same.
 */
function syntheticTraces(): Pick<Traces, 'cpuWeek' | 'netIn' | 'netOut'> {
  const cpuWeek = new Float64Array(BUCKETS_PER_WEEK);
  for (let k = 0; k < BUCKETS_PER_WEEK; k++) {
    const hour = (k % BUCKETS_PER_DAY) / 12;
    const day = Math.floor(k / BUCKETS_PER_DAY); // 0 = Sunday
    const weekend = day === 0 || day === 6 ? 0.93 : 1;
    cpuWeek[k] = (1 + 0.08 * Math.sin((2 * Math.PI * (hour - 9)) / 24)) * weekend;
  }
  const walk = (seed: number) => {
    const rand = mulberry32(seed);
    const s = new Float64Array(BUCKETS_PER_WEEK);
    let level = 1;
    for (let k = 0; k < s.length; k++) {
      level = Math.min(1.2, Math.max(0.8, level + (rand() - 0.5) * 0.01));
      const hour = (k % BUCKETS_PER_DAY) / 12;
      s[k] = level * (1 + 0.06 * Math.sin((2 * Math.PI * (hour - 10)) / 24));
    }
    return normalize(s);
  };
  return { cpuWeek: normalize(cpuWeek), netIn: walk(2018), netOut: walk(2019) };
}

function normalize(series: Float64Array): Float64Array {
  const m = mean(series);
  if (!(m > 0)) throw new Error('trace series has no positive mean');
  return series.map((v) => v / m);
}

function mean(series: Float64Array): number {
  let s = 0;
  for (const v of series) s += v;
  return s / series.length;
}

function interpolate(series: Float64Array, pos: number): number {
  const i0 = Math.floor(pos);
  const frac = pos - i0;
  const a = series[i0 % series.length]!;
  const b = series[(i0 + 1) % series.length]!;
  return a + (b - a) * frac;
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
