/**
 * The fleet traces the simulator ships in sim/traces/: what they hold, that they are what
 * sim/traces/derive.ts makes of the original series, and how loading behaves when a
 * directory or a file is missing or malformed. Nothing here reads outside the repository
 * except temporary directories the tests write themselves, and the original series when
 * the runner names them in SIM_TRACE_SOURCES (there is no default location for them).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_TRACE_DIR, PROFILE_FILES, TRACE_FILES, dailyProfile, deriveCpuWeek, describeTraces, formatCpuProfile, loadTraces,
} from '../sim/traces.js';
import { deriveProfiles, hasOriginals, SHIPPED_DIR } from '../sim/traces/derive.js';

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
const SOURCES = process.env.SIM_TRACE_SOURCES;
const WEEK = 2016;
const DAY = 288;

const temps: string[] = [];
afterAll(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sim-traces-'));
  temps.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0) / xs.length;

/** The shipped CPU profile's form: 2016 five-minute rows from Sunday 00:00, mean 1, 6 digits. */
function expectShippedShape(text: string): void {
  const lines = text.split('\n');
  expect(lines[0]).toBe('minute_of_week,cpu_shape');
  expect(lines.at(-1)).toBe('');
  const rows = lines.slice(1, -1).map((l) => l.split(','));
  expect(rows).toHaveLength(WEEK);
  rows.forEach(([minute, value], k) => {
    expect(minute).toBe(String(k * 5));
    expect(value).toMatch(/^(0\.\d{6}|[1-9]\.\d{5})$/); // 6 significant digits
  });
  const week = Float64Array.from(rows, (r) => Number(r[1]));
  expect(formatCpuProfile(week)).toBe(text); // canonical: what derive.ts would write
  expect(Math.abs(mean(week) - 1)).toBeLessThan(1e-5);
  expect(Math.min(...week)).toBeGreaterThan(0.5);
  expect(Math.max(...week)).toBeLessThan(2);
  // A fleet's week: Saturday and Sunday (days 6 and 0) quieter than every weekday.
  const days = Array.from({ length: 7 }, (_, d) => mean(week.subarray(d * DAY, (d + 1) * DAY)));
  for (const d of [1, 2, 3, 4, 5]) expect(Math.max(days[0]!, days[6]!)).toBeLessThan(days[d]!);
}

describe('fleet traces shipped in sim/traces/', () => {
  const shipped = readFileSync(join(SHIPPED_DIR, PROFILE_FILES.cpu), 'utf8');

  it('the default trace directory is sim/traces/ inside the repository, and holds the profile', () => {
    expect(fileURLToPath(DEFAULT_TRACE_DIR)).toBe(join(REPO_ROOT, 'sim', 'traces') + '/');
    expect(existsSync(join(REPO_ROOT, 'sim', 'traces', PROFILE_FILES.cpu))).toBe(true);
    expect(existsSync(join(REPO_ROOT, 'sim', 'traces', 'README.md'))).toBe(true);
    // Only the derived profile is shipped, never the original series.
    for (const original of Object.values(TRACE_FILES)) expect(existsSync(join(REPO_ROOT, 'sim', 'traces', original))).toBe(false);
  });

  it('the shipped CPU trace profile is a normalized week with the weekend on Saturday and Sunday', () => {
    expectShippedShape(shipped);
    const traces = loadTraces();
    expect(traces.source.cpu).toBe('azure2019');
    expect(traces.cpuWeek).toHaveLength(WEEK);
    expect(mean(traces.cpuWeek)).toBeCloseTo(1, 9);
    const day = dailyProfile(traces);
    expect(Math.max(...day) / Math.min(...day)).toBeGreaterThan(1.08);
  });

  it('the shipped trace profile equals what derive.ts computes from the originals (or, without them, has the right shape)', () => {
    if (hasOriginals(SOURCES)) {
      expect(deriveProfiles(SOURCES)).toEqual({ [PROFILE_FILES.cpu]: shipped });
      // Pointing the simulator at the originals gives exactly the shipped shape.
      expect(Array.from(loadTraces({ dataDir: SOURCES }).cpuWeek)).toEqual(Array.from(loadTraces().cpuWeek));
    } else {
      expectShippedShape(shipped);
    }
  });

  it('the demo line says which traces shaped the fleet', () => {
    expect(describeTraces(loadTraces())).toBe(
      'cpu azure2019 (derived weekly profile), bandwidth synthetic (daily swing and slow wander; the Alibaba trace is not shipped, see sim/traces/README.md)',
    );
  });
});

describe('loading fleet traces from a directory the user names', () => {
  // A month of 5-minute buckets with a daily swing and a quiet weekend, in the original format.
  const azureSeries = Array.from({ length: 8640 }, (_, i) => {
    const hour = (i % DAY) / 12;
    const weekend = Math.floor(i / DAY) % 7 >= 5 ? 0.9 : 1;
    return 1e6 * weekend * (1 + 0.1 * Math.sin((2 * Math.PI * (hour - 9)) / 24));
  });
  const azureCsv = `timestamp,cpu_usage,assigned_mem\n${azureSeries.map((v, i) => `${i * 300},${v},1`).join('\n')}\n`;
  const alibabaCsv = `cpu_util_percent,mem_util_percent,net_in,net_out,disk_io_percent\n${Array.from({ length: 600 }, (_, i) => `1,1,${30 + i / 100},${20 + i / 50},1`).join('\n')}\n`;

  it('falls back to synthetic trace shapes, with a warning, when the directory does not exist', () => {
    const warnings: string[] = [];
    const missing = join(tmpdir(), `no-such-trace-dir-${process.pid}-${Date.now()}`);
    const traces = loadTraces({ dataDir: missing, warn: (m) => warnings.push(m) });
    expect(traces.source).toEqual({ cpu: 'synthetic', net: 'synthetic' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${missing}/ does not exist`);
    expect(warnings[0]).toContain('synthetic');
    expect(describeTraces(traces)).toContain('does not exist');
  });

  it('derives the trace profile on load from the original series, exactly as derive.ts does', () => {
    const dir = tempDir({ [TRACE_FILES.azure]: azureCsv, [TRACE_FILES.alibaba]: alibabaCsv });
    const warnings: string[] = [];
    const traces = loadTraces({ dataDir: dir, warn: (m) => warnings.push(m) });
    expect(warnings).toEqual([]);
    expect(traces.source).toEqual({ cpu: 'azure2019', net: 'alibaba2018' });
    const profile = deriveProfiles(dir)[PROFILE_FILES.cpu]!;
    expect(profile).toBe(formatCpuProfile(deriveCpuWeek(Float64Array.from(azureSeries))));
    const fromProfile = loadTraces({ dataDir: tempDir({ [PROFILE_FILES.cpu]: profile }), warn: () => {} });
    expect(Array.from(traces.cpuWeek)).toEqual(Array.from(fromProfile.cpuWeek));
    // The weekend of the input lands on Saturday and Sunday.
    const days = Array.from({ length: 7 }, (_, d) => mean(traces.cpuWeek.subarray(d * DAY, (d + 1) * DAY)));
    expect(days[0]).toBeLessThan(days[3]!);
    expect(days[6]).toBeLessThan(days[3]!);
    expect(traces.netIn).toHaveLength(600);
    expect(mean(traces.netIn)).toBeCloseTo(1, 9);
  });

  it('warns about each missing trace file in a directory that exists', () => {
    const warnings: string[] = [];
    const traces = loadTraces({ dataDir: tempDir({ [TRACE_FILES.azure]: azureCsv }), warn: (m) => warnings.push(m) });
    expect(traces.source).toEqual({ cpu: 'azure2019', net: 'synthetic' });
    expect(warnings).toEqual([expect.stringContaining(`no ${TRACE_FILES.alibaba}`)]);

    const none: string[] = [];
    expect(loadTraces({ dataDir: tempDir({}), warn: (m) => none.push(m) }).source).toEqual({ cpu: 'synthetic', net: 'synthetic' });
    expect(none).toHaveLength(2);
  });

  it('a malformed trace file is an error, not a silent fallback', () => {
    const rows = shippedRows();
    const bad = [...rows];
    bad[100] = '495,abc';
    expect(() => loadTraces({ dataDir: tempDir({ [PROFILE_FILES.cpu]: bad.join('\n') }) })).toThrow(/line 101: bad cpu_shape/);
    expect(() => loadTraces({ dataDir: tempDir({ [PROFILE_FILES.cpu]: rows.slice(0, 500).join('\n') }) })).toThrow(/expected at least 2016/);
    expect(() => loadTraces({ dataDir: tempDir({ [PROFILE_FILES.cpu]: rows.join('\n').replace('cpu_shape', 'cpu') }) })).toThrow(/missing column cpu_shape/);
    expect(() => loadTraces({ dataDir: tempDir({ [TRACE_FILES.azure]: 'timestamp,cpu_usage\n0,1\n' }) })).toThrow(/rows, expected at least/);
  });
});

function shippedRows(): string[] {
  return readFileSync(join(SHIPPED_DIR, PROFILE_FILES.cpu), 'utf8').trimEnd().split('\n');
}
