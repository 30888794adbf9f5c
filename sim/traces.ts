/**
 * Real fleet-usage shapes for the simulator. The repository ships them, as small derived
 * profiles, in sim/traces/ (see its README.md for each source trace, its licence and how
 * the files were made); sim/traces/derive.ts rebuilds them from the original 300-second
 * series. We keep only the *shape* (normalized to mean 1) and let samples.ts scale it per
 * resource:
 *
 * - CPU: the Azure 2019 VM trace's `cpu_usage`, folded into one week of 5-minute buckets
 *   (the trace is a month, so each bucket averages ~4 weeks), rotated so index 0 is
 *   Sunday 00:00 local time. Read in each region's local time, it gives diurnal and
 *   weekly swings that look like a real fleet's. Shipped: `azure2019-cpu-week.csv`.
 * - Bandwidth: a synthetic shape (daily swing, slow wander) by default. Nothing from the
 *   Alibaba 2018 trace is shipped: its terms allow research or study use only, and its
 *   fleet `net_in` / `net_out` have no daily pattern to borrow (a steady ~4 %/day climb;
 *   see sim/traces/README.md). Given a directory holding the original Alibaba series
 *   (`--traces DIR`), the simulator uses it as before: normalized, looped.
 *
 * A trace directory may hold the derived CPU profile or the original Azure series (then
 * derived on load, exactly as derive.ts does). When a directory or a file the user named
 * is missing, the simulator falls back to a synthetic shape of the same form and *says
 * so* through `warn` (stderr by default) and in `Traces.detail`. A file that exists but
 * is malformed is an error: silently simulating something else would hide it.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from './random.js';

export const BUCKET_MS = 300_000;
const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;
const BUCKETS_PER_DAY = DAY_MS / BUCKET_MS; // 288
const BUCKETS_PER_WEEK = WEEK_MS / BUCKET_MS; // 2016

/** The derived profile shipped in sim/traces/ (made by sim/traces/derive.ts). */
export const PROFILE_FILES = { cpu: 'azure2019-cpu-week.csv' } as const;

/** Significant digits kept in the shipped CPU profile. */
export const PROFILE_DIGITS = { cpu: 6 } as const;

/** The original 300-second series the profiles derive from; not in the repository. */
export const TRACE_FILES = {
  azure: 'azure2019_vm_fleet_month_300s.csv',
  alibaba: 'alibaba2018_machine_usage_days_1_to_8_300s.csv',
} as const;

/**
 * sim/traces/ inside the repository. From a build (dist/sim/traces.js) the profiles are
 * not copied next to the code, so the source tree's sim/traces/ is used: still inside
 * the repository root, never beside it.
 */
export const DEFAULT_TRACE_DIR: URL = (() => {
  const here = new URL('./traces/', import.meta.url);
  const inDist = /\/dist\/sim\/traces\/$/.test(here.pathname);
  return inDist ? new URL('../../sim/traces/', import.meta.url) : here;
})();

export interface Traces {
  source: { cpu: 'azure2019' | 'synthetic'; net: 'alibaba2018' | 'synthetic' };
  /** How each shape was obtained, in words: for logs and the demo's output. */
  detail: { cpu: string; net: string };
  /** One week of 5-minute buckets from Sunday 00:00 local time, mean 1. */
  cpuWeek: Float64Array;
  /** Consecutive 5-minute buckets, mean 1, looped over absolute time. */
  netIn: Float64Array;
  netOut: Float64Array;
}

export interface TraceOptions {
  /** Directory holding the profiles (or the original series); defaults to sim/traces/. */
  dataDir?: string | URL;
  /** Told when a synthetic shape replaces a missing trace; default: a line on stderr. */
  warn?: (message: string) => void;
}

const cache = new Map<string, Traces>();

const stderrWarn = (message: string) => process.stderr.write(`warning: ${message}\n`);

/**
 * Reads the traces once per directory and caches them (a warning, if any, is given once).
 * Per shape: the derived profile if present, else the original series (derived on load),
 * else a synthetic stand-in, with a warning.
 */
export function loadTraces(opts: TraceOptions = {}): Traces {
  const dir = toDirPath(opts.dataDir ?? DEFAULT_TRACE_DIR);
  const cached = cache.get(dir);
  if (cached) return cached;
  const warn = opts.warn ?? stderrWarn;
  const userDir = dir !== toDirPath(DEFAULT_TRACE_DIR);

  let cpu: { week: Float64Array; detail: string } | undefined;
  let net: { netIn: Float64Array; netOut: Float64Array; detail: string } | undefined;
  let cpuWhy: string;
  let netWhy: string;
  if (!existsSync(dir)) {
    cpuWhy = netWhy = `${dir} does not exist`;
    warn(`trace directory ${dir} does not exist: the simulator uses synthetic CPU and bandwidth shapes instead of the real traces`);
  } else {
    if (!statSync(dir).isDirectory()) throw new Error(`trace directory ${dir} is not a directory`);
    cpu = loadCpu(dir);
    net = loadNet(dir);
    cpuWhy = `neither ${PROFILE_FILES.cpu} nor ${TRACE_FILES.azure} in ${dir}`;
    netWhy = userDir ? `no ${TRACE_FILES.alibaba} in ${dir}` : 'daily swing and slow wander; the Alibaba trace is not shipped, see sim/traces/README.md';
    if (!cpu) warn(`${cpuWhy}: the simulator uses a synthetic CPU shape instead of the Azure trace`);
    if (!net && userDir) warn(`${netWhy}: the simulator uses a synthetic bandwidth shape`);
  }
  const synthetic = cpu && net ? undefined : syntheticTraces();

  const traces: Traces = {
    source: { cpu: cpu ? 'azure2019' : 'synthetic', net: net ? 'alibaba2018' : 'synthetic' },
    detail: { cpu: cpu?.detail ?? cpuWhy, net: net?.detail ?? netWhy },
    cpuWeek: cpu ? cpu.week : synthetic!.cpuWeek,
    netIn: net ? net.netIn : synthetic!.netIn,
    netOut: net ? net.netOut : synthetic!.netOut,
  };
  cache.set(dir, traces);
  return traces;
}

/** "cpu azure2019 (derived weekly profile), bandwidth …": which traces shaped the fleet. */
export function describeTraces(traces: Traces): string {
  return `cpu ${traces.source.cpu} (${traces.detail.cpu}), bandwidth ${traces.source.net} (${traces.detail.net})`;
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

// ---------------------------------------------------------------------------------------
// Derivation: the one definition, used on load and by sim/traces/derive.ts.

/**
 * The shipped CPU profile from the Azure series: folded into a week, rotated to put the
 * weekend on Saturday/Sunday, normalized, rounded to PROFILE_DIGITS.cpu digits.
 */
export function deriveCpuWeek(cpuUsage: Float64Array, path = 'cpu series'): Float64Array {
  return roundSignificant(weeklyShape(cpuUsage, path), PROFILE_DIGITS.cpu);
}

/** Rows of a profile CSV as written by derive.ts (and compared by its check). */
export function formatCpuProfile(week: Float64Array): string {
  const rows = Array.from(week, (v, k) => `${k * 5},${v.toPrecision(PROFILE_DIGITS.cpu)}`);
  return `minute_of_week,cpu_shape\n${rows.join('\n')}\n`;
}

/** Reads the named numeric columns of a CSV, or undefined when the file does not exist. */
export function readCsv(path: string, columns: readonly string[], minRows = BUCKETS_PER_DAY): Record<string, Float64Array> | undefined {
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
  for (const c of columns) out[c] = new Float64Array(Math.max(0, lines.length - 1));
  for (let r = 1; r < lines.length; r++) {
    const cells = (lines[r] as string).split(',');
    columns.forEach((c, k) => {
      const cell = cells[idx[k] as number];
      const v = cell === undefined || cell.trim() === '' ? NaN : Number(cell);
      if (!Number.isFinite(v) || v < 0) throw new Error(`trace ${path}: line ${r + 1}: bad ${c} value`);
      (out[c] as Float64Array)[r - 1] = v;
    });
  }
  if (lines.length - 1 < minRows) throw new Error(`trace ${path}: ${lines.length - 1} rows, expected at least ${minRows}`);
  return out;
}

function loadCpu(dir: string): { week: Float64Array; detail: string } | undefined {
  const profilePath = dir + PROFILE_FILES.cpu;
  const profile = readCsv(profilePath, ['cpu_shape'], BUCKETS_PER_WEEK);
  if (profile) {
    const week = profile.cpu_shape as Float64Array;
    if (week.length !== BUCKETS_PER_WEEK) throw new Error(`trace ${profilePath}: ${week.length} rows, expected ${BUCKETS_PER_WEEK}`);
    return { week: normalize(week, profilePath), detail: 'derived weekly profile' };
  }
  const seriesPath = dir + TRACE_FILES.azure;
  const series = readCsv(seriesPath, ['cpu_usage']);
  if (!series) return undefined;
  const week = normalize(deriveCpuWeek(series.cpu_usage as Float64Array, seriesPath), seriesPath);
  return { week, detail: 'weekly profile derived on load from the original series' };
}

function loadNet(dir: string): { netIn: Float64Array; netOut: Float64Array; detail: string } | undefined {
  const seriesPath = dir + TRACE_FILES.alibaba;
  const series = readCsv(seriesPath, ['net_in', 'net_out']);
  if (!series) return undefined;
  return {
    netIn: normalize(series.net_in!, seriesPath),
    netOut: normalize(series.net_out!, seriesPath),
    detail: 'original 8-day series from the trace directory, looped',
  };
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
  return normalize(rotated, path);
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

function toDirPath(dir: string | URL): string {
  const p = dir instanceof URL ? fileURLToPath(dir) : dir;
  return p.endsWith('/') ? p : `${p}/`;
}

function roundSignificant(series: Float64Array, digits: number): Float64Array {
  return series.map((v) => Number(v.toPrecision(digits)));
}

function normalize(series: Float64Array, path = 'trace series'): Float64Array {
  const m = mean(series);
  if (!(m > 0)) throw new Error(`${path}: no positive mean`);
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
