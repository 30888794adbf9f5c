/**
 * Capacity planners' named queries (queries/capacity/*.sql), over HTTP and the CLI, on a
 * real pipeline (real Redis, embedded ClickHouse). Each query's answer is checked against
 * a value computed here, in TypeScript, from the data the test itself generated:
 *  - three weeks of simulated fleet analytics (cohorts with daily and weekly shape,
 *    growth, gaps, zone cells of one cohort, generalized cohorts), written straight into
 *    analytics, for the queries that need weeks of history;
 *  - and six hours of a simulated fleet sent through the whole pipeline (HTTP → queue →
 *    rollup), so fleet size and memory are also checked end to end against the simulator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runQueryCommand } from '../cli/query.js';
import { capacityQueries } from '../queries/capacity/library.js';
import { parseSqlFile, SqlFileError } from '../queries/capacity/sql-file.js';
import type { KeyRole } from '../schemas/config.js';
import { createFleet, generateSamples } from '../sim/index.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const GiB = 1024 ** 3;

// --- three weeks of simulated analytics ---------------------------------------------------

const SYN_START = Date.UTC(2026, 0, 5); // a Monday
const SYN_HOURS = 21 * 24;
const SYN_END = SYN_START + SYN_HOURS * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();

interface Cell {
  hour: number;
  region: string;
  zone: string;
  resource_type: string;
  instance_type: string;
  metric: string;
  accounts: number;
  resources: number;
  micros: bigint;
  p95: number;
  max: number;
}

interface Cohort {
  region: string;
  zone: string;
  type: string;
  it: string;
  metrics: string[];
  resources: number;
  vcpus: number;
  memGiB: number;
  storGiB: number;
  growth: number;
  bw: number;
  gaps?: number;
  /** GPUs per resource, for cohorts that report gpu. */
  gpus?: number;
}

const VM = ['cpu', 'memory', 'storage', 'bandwidth_in', 'bandwidth_out'];
// Two zone cells of eu-west-1 m5.large: the queries must sum them as one cohort.
const COHORTS: Cohort[] = [
  { region: 'eu-west-1', zone: 'eu-west-1a', type: 'vm', it: 'm5.large', metrics: VM, resources: 12, vcpus: 2, memGiB: 8, storGiB: 50, growth: 0.004, bw: 4e5 },
  { region: 'eu-west-1', zone: 'eu-west-1b', type: 'vm', it: 'm5.large', metrics: VM, resources: 7, vcpus: 2, memGiB: 8, storGiB: 40, growth: 0.002, bw: 3e5 },
  // This cohort's VMs carry a GPU each: gpu is appended, so the other metrics' noise is unchanged.
  { region: 'eu-west-1', zone: '*', type: 'vm', it: 'c5.2xlarge', metrics: [...VM, 'gpu'], resources: 5, vcpus: 8, memGiB: 16, storGiB: 100, growth: 0.01, bw: 9e5, gpus: 1 },
  { region: 'eu-west-1', zone: '*', type: 'vm', it: '*', metrics: VM, resources: 4, vcpus: 4, memGiB: 16, storGiB: 20, growth: 0, bw: 2e5 },
  { region: 'eu-west-1', zone: 'eu-west-1a', type: 'database', it: 'db.r5.large', metrics: ['cpu', 'memory', 'storage'], resources: 3, vcpus: 2, memGiB: 16, storGiB: 300, growth: 0.006, bw: 0 },
  { region: 'eu-west-1', zone: 'eu-west-1a', type: 'volume', it: 'unknown', metrics: ['storage'], resources: 20, vcpus: 0, memGiB: 0, storGiB: 500, growth: 0.02, bw: 0 },
  { region: 'eu-west-1', zone: '*', type: 'network', it: 'unknown', metrics: ['bandwidth_in', 'bandwidth_out'], resources: 6, vcpus: 0, memGiB: 0, storGiB: 0, growth: 0, bw: 5e6, gaps: 7 },
  { region: 'us-east-1', zone: 'us-east-1a', type: 'vm', it: 'm5.large', metrics: VM, resources: 15, vcpus: 2, memGiB: 8, storGiB: 50, growth: -0.001, bw: 5e5 },
  { region: 'us-east-1', zone: '*', type: 'vm', it: 'm5.xlarge', metrics: VM, resources: 6, vcpus: 4, memGiB: 16, storGiB: 80, growth: 0.03, bw: 6e5 },
  { region: 'us-east-1', zone: 'us-east-1b', type: 'bucket', it: 'unknown', metrics: ['storage', 'bandwidth_out'], resources: 9, vcpus: 0, memGiB: 0, storGiB: 2000, growth: 0.005, bw: 8e5 },
];
/** vCPUs per instance type, as schemas/migrations/0020 records them. */
const VCPUS: Record<string, number> = { 'm5.large': 2, 'c5.2xlarge': 8, 'm5.xlarge': 4, 'db.r5.large': 2 };

function noise(seed: number): number {
  let x = (seed ^ 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return ((x ^ (x >>> 16)) >>> 0) / 2 ** 32;
}

function syntheticCells(): Cell[] {
  const cells: Cell[] = [];
  COHORTS.forEach((c, ci) => {
    for (let h = 0; h < SYN_HOURS; h++) {
      if (c.gaps && h % 37 === c.gaps) continue; // a cohort published in most hours only
      const t = SYN_START + h * HOUR;
      const d = new Date(t);
      const weekday = d.getUTCDay() >= 1 && d.getUTCDay() <= 5;
      const diurnal = 1 + 0.35 * Math.sin((2 * Math.PI * (d.getUTCHours() - 8)) / 24);
      const grow = 1 + c.growth * (h / 24);
      const resources = Math.max(1, Math.round(c.resources * (c.type === 'vm' ? grow : 1)));
      c.metrics.forEach((metric, mi) => {
        const n = noise(ci * 1_000_003 + h * 17 + mi);
        let micros: bigint;
        if (metric === 'cpu') micros = BigInt(Math.round(resources * c.vcpus * 3600 * 0.3 * diurnal * (weekday ? 1 : 0.7) * grow * (0.9 + 0.2 * n) * 1e6));
        else if (metric === 'memory') micros = BigInt(resources * c.memGiB * GiB * 3600) * 1_000_000n;
        else if (metric === 'storage') micros = BigInt(Math.round(resources * c.storGiB * GiB * grow)) * 3600n * 1_000_000n;
        else if (metric === 'gpu') micros = BigInt(Math.round(resources * c.gpus! * 3600 * 0.7 * diurnal * (weekday ? 1 : 0.5) * (0.9 + 0.2 * n) * 1e6));
        else micros = BigInt(Math.round(resources * c.bw * 3600 * diurnal * (metric === 'bandwidth_in' ? 0.6 : 1) * (0.5 + n * (n > 0.97 ? 6 : 1)))) * 1_000_000n;
        const mean = Number(micros) / 1e6 / resources;
        cells.push({ hour: t, region: c.region, zone: c.zone, resource_type: c.type, instance_type: c.it, metric, accounts: Math.max(2, Math.ceil(resources / 2)), resources, micros, p95: mean * (1.3 + 0.2 * n), max: mean * (1.8 + 0.4 * n) });
      });
    }
  });
  return cells;
}

const decimal = (m: bigint) => {
  const frac = (m % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return frac ? `${m / 1_000_000n}.${frac}` : `${m / 1_000_000n}`;
};
const chTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
/** How answers write a DateTime: RFC 3339 with Z (date_time_output_format = 'iso'). */
const rfc3339 = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;
const num = (m: bigint) => Number(m) / 1e6;

// --- six hours through the pipeline -------------------------------------------------------

const LIVE_END = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
const LIVE_START = LIVE_END - 6 * HOUR;
const liveFleet = createFleet({ accounts: 20, resources: 40, seed: 11 });
for (const r of liveFleet.resources) {
  // One region, one zone, one instance type per kind: every cohort covers many accounts,
  // so nothing is generalized or suppressed and the analytics equal the fleet.
  r.region = 'eu-central-1';
  if (r.attributes) {
    if (r.attributes.instance_type) r.attributes.instance_type = r.type === 'vm' ? 'm5.large' : 'db.r5.large';
    if (r.attributes.zone) r.attributes.zone = 'eu-central-1a';
  }
}

// --- the suppression report of the three weeks, seeded beside their cells ----------------

/** When K_ANONYMITY went from 2 to 3 in the seeded report: halfway through a day. */
const K_CHANGE = SYN_START + 10 * DAY + 12 * HOUR;
/** The first hours were recorded before the report kept k and the generalized counts. */
const LEGACY_UNTIL = SYN_START + 6 * HOUR;
/** The first of the hours (every 50th) whose report was computed twice. */
const TWICE = SYN_START + 8 * HOUR;

interface ReportRow {
  hour: number;
  metric: string;
  total: number;
  generalized: number;
  zoneGeneralized: number;
  labelGeneralized: number;
  suppressed: number;
  k: number;
  version: number;
}

/**
 * One row per hour and metric the cells cover, as the rollup writes it: the published
 * resources plus a few suppressed, generalized counts that include the suppressed (the
 * rollup generalizes before it suppresses). Every 50th hour (from TWICE) was also computed once before,
 * with other figures, under an older version: only the newest may count.
 */
function syntheticReport(): ReportRow[] {
  const out: ReportRow[] = [];
  for (const [key, cs] of groupBy(cells, (c) => `${c.hour}|${c.metric}`)) {
    const [hour, metric] = [Number(key.split('|')[0]), key.split('|')[1]!];
    const n = noise(hour / HOUR + metric.length * 7919);
    const suppressed = Math.floor(n * 4);
    const published = sum(cs.map((c) => c.resources));
    const legacy = hour < LEGACY_UNTIL;
    const generalizedCells = sum(cs.filter((c) => c.instance_type === '*').map((c) => c.resources));
    const zoneCells = sum(cs.filter((c) => c.instance_type === '*' && c.zone === '*').map((c) => c.resources));
    out.push({
      hour, metric, total: published + suppressed,
      generalized: legacy ? 0 : generalizedCells + suppressed,
      zoneGeneralized: legacy ? 0 : zoneCells + suppressed,
      labelGeneralized: legacy ? 0 : Math.floor(noise(hour / HOUR + 31 * metric.length) * 3),
      suppressed, k: legacy ? 0 : hour >= K_CHANGE ? 3 : 2, version: 2,
    });
    if ((hour - TWICE) % (50 * HOUR) === 0) out.push({ ...out.at(-1)!, total: published + 100, suppressed: 100, generalized: 150, version: 1 });
  }
  return out;
}

// --- a generalized and a suppressed cohort, through the pipeline --------------------------

const EDGE_START = LIVE_START - 3 * HOUR;
/**
 * Nine VMs of nine accounts in three hours before the live ones, with K_ANONYMITY=2. What the
 * rollup must make of each is the point of the fixture, written beside it:
 *  - fine: three accounts share eu-north-1a m5.large, published as sent;
 *  - instance type generalized: c5.xlarge is alone in eu-north-1a, and acme-special is
 *    neither a public name nor sent by k accounts (its label is withheld): the two meet in
 *    (eu-north-1a, '*');
 *  - zone generalized too: r5.large alone in eu-north-1b and again alone in eu-north-1c:
 *    the two meet in (eu-north-1, '*', '*');
 *  - suppressed: the only account in ap-east-9 reaches k nowhere.
 */
const EDGE = [
  { account: 'edge-acct-1', region: 'eu-north-1', zone: 'eu-north-1a', it: 'm5.large', fate: 'fine' },
  { account: 'edge-acct-2', region: 'eu-north-1', zone: 'eu-north-1a', it: 'm5.large', fate: 'fine' },
  { account: 'edge-acct-3', region: 'eu-north-1', zone: 'eu-north-1a', it: 'm5.large', fate: 'fine' },
  { account: 'edge-acct-4', region: 'eu-north-1', zone: 'eu-north-1a', it: 'c5.xlarge', fate: 'generalized' },
  { account: 'edge-acct-5', region: 'eu-north-1', zone: 'eu-north-1a', it: 'acme-special', fate: 'generalized', labelWithheld: true },
  { account: 'edge-acct-6', region: 'eu-north-1', zone: 'eu-north-1b', it: 'r5.large', fate: 'zone-generalized' },
  { account: 'edge-acct-7', region: 'eu-north-1', zone: 'eu-north-1c', it: 'r5.large', fate: 'zone-generalized' },
  { account: 'edge-acct-8', region: 'ap-east-9', zone: 'ap-east-9a', it: 'm5.large', fate: 'suppressed' },
] as const;
/** Each VM's vCPU-seconds and bytes of memory in hour h (0–2): distinct, so a dropped one shows. */
const edgeCpu = (i: number, h: number) => 600 * (i + 1) + 100 * h;
const edgeMemory = (i: number, h: number) => (i + 1) * GiB + h * 256 * 1024 * 1024;

function edgeSamples() {
  return Array.from({ length: 3 }, (_, h) => EDGE.flatMap((e, i) => {
    const common = {
      account_id: e.account, resource_id: `${e.account}-vm`, resource_type: 'vm', region: e.region,
      ts: EDGE_START + (h + 1) * HOUR, interval_s: 3600, attributes: { instance_type: e.it, zone: e.zone },
    };
    return [
      { ...common, id: `${e.account}-cpu-${h}`, metric: 'cpu', value: edgeCpu(i, h) },
      { ...common, id: `${e.account}-memory-${h}`, metric: 'memory', value: edgeMemory(i, h) },
    ];
  })).flat();
}

// --- the test pipeline --------------------------------------------------------------------

let p: TestPipeline;
let base: string;
const cells = syntheticCells();

async function get(path: string, role: KeyRole = 'planner') {
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${KEYS[role]}` } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : undefined };
}

async function run(name: string, params: Record<string, string>): Promise<Record<string, any>[]> {
  const res = await get(`/v1/analytics/queries/${name}?${new URLSearchParams(params).toString()}`);
  expect(res.status, res.text).toBe(200);
  expect(res.body.query).toBe(`capacity/${name}`);
  return res.body.rows;
}

beforeAll(async () => {
  p = await startTestPipeline('consumers-queries', { K_ANONYMITY: '2' });
  await p.ch!.insert({
    table: 'analytics.fleet_usage_hourly_versions',
    format: 'JSONEachRow',
    values: cells.map((c) => ({
      hour: chTime(c.hour), region: c.region, zone: c.zone, resource_type: c.resource_type, instance_type: c.instance_type, metric: c.metric,
      accounts: c.accounts, resources: c.resources, samples: c.resources * 60, total: decimal(c.micros),
      mean: num(c.micros) / c.resources, p50: num(c.micros) / c.resources, p95: c.p95, max: c.max,
      generalized: c.instance_type === '*' || c.zone === '*' ? 1 : 0, version: 1,
    })),
  });
  // The older versions go in last, and apart: one insert would be deduplicated as it is
  // written (optimize_on_insert). With merges held, two parts stay two rows, as they do in
  // production until a merge: only reading the report deduplicated counts an hour once.
  await p.ch!.command({ query: 'SYSTEM STOP MERGES analytics.suppression_hourly' });
  for (const version of [2, 1]) {
    await p.ch!.insert({
      table: 'analytics.suppression_hourly',
      format: 'JSONEachRow',
      values: syntheticReport().filter((r) => r.version === version).map((r) => ({
        hour: chTime(r.hour), metric: r.metric, resources_total: r.total, resources_generalized: r.generalized,
        resources_zone_generalized: r.zoneGeneralized, resources_label_generalized: r.labelGeneralized,
        label_values_generalized: r.labelGeneralized > 0 ? 1 : 0, resources_suppressed: r.suppressed, k: r.k, version: r.version,
      })),
    });
  }
  const edge = await p.post(edgeSamples());
  expect(edge.status, JSON.stringify(edge.body)).toBe(202);
  expect(edge.body.accepted).toBe(EDGE.length * 2 * 3);
  for (const batch of generateSamples(liveFleet, { start: LIVE_START, hours: 6, stepS: 3600, batchSize: 2000, duplicateRate: 0, invalidRate: 0 })) {
    const res = await p.post(batch.items);
    expect(res.status).toBe(202);
  }
  await p.waitIdle();

  // The pipeline serves these routes itself: the tests go through its real wiring.
  base = p.url;
});

afterAll(async () => {
  await p?.stop();
});

// --- helpers for the expected values ------------------------------------------------------

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = m.get(k);
    if (list) list.push(it);
    else m.set(k, [it]);
  }
  return m;
}
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const sumBig = (xs: readonly bigint[]) => xs.reduce((a, b) => a + b, 0n);
/** ClickHouse's quantileExact(level): the ⌊level·n⌋-th smallest, counting from 0. */
const quantileExact = (xs: readonly number[], level: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(level * xs.length))]!;
const day = (ms: number) => iso(ms).slice(0, 10);
const monday = (ms: number) => {
  const d = new Date(ms);
  return day(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - ((d.getUTCDay() + 6) % 7)));
};
const isoDow = (ms: number) => ((new Date(ms).getUTCDay() + 6) % 7) + 1;

/** A value rounded to `places` by ClickHouse vs. the exact value computed here. */
function near(got: unknown, want: number | null, places: number, label: string): void {
  if (want === null) {
    expect(got, label).toBeNull();
    return;
  }
  expect(typeof got, label).toBe('number');
  expect(Math.abs((got as number) - want), `${label}: ${String(got)} vs ${want}`).toBeLessThanOrEqual(0.5 * 10 ** -places + 1e-9 * Math.abs(want));
}

/** Per hour × region × metric: the region's exact total. */
function regionHourly(metric: string, from = SYN_START, to = SYN_END) {
  const out = new Map<string, { region: string; hour: number; micros: bigint }>();
  for (const c of cells) {
    if (c.metric !== metric || c.hour < from || c.hour >= to) continue;
    const k = `${c.region}|${c.hour}`;
    const e = out.get(k) ?? { region: c.region, hour: c.hour, micros: 0n };
    e.micros += c.micros;
    out.set(k, e);
  }
  return [...out.values()];
}
const NATURAL: Record<string, number> = { cpu: 3600, memory: 3600 * GiB, storage: 3600 * GiB, bandwidth_in: 450e6, bandwidth_out: 450e6, gpu: 3600 };

describe('the named query library', () => {
  it('has the ten capacity questions, each with a parsed header whose placeholders match its parameters', () => {
    const names = capacityQueries().map((q) => q.id);
    expect(names).toEqual(
      expect.arrayContaining([
        'capacity/cpu-utilization-daily', 'capacity/memory-storage-allocated', 'capacity/storage-days-to-capacity', 'capacity/bandwidth-p95-monthly',
        'capacity/hour-of-week-profile', 'capacity/fastest-growing-cohorts', 'capacity/fleet-size', 'capacity/demand-forecast',
        'capacity/usage-by-region', 'capacity/suppression-report',
      ]),
    );
    for (const q of capacityQueries()) {
      expect(q.title.length).toBeGreaterThan(10);
      expect(q.description.length).toBeGreaterThan(40);
      expect(q.body).toMatch(/analytics\./);
      expect(q.body).not.toMatch(/billing\./);
    }
  });

  it('refuses a header that disagrees with its SQL', () => {
    const head = '-- title: t\n-- description: d\n';
    expect(() => parseSqlFile(`${head}-- param from: DateTime\nSELECT {from:String}`, 'x')).toThrow(SqlFileError);
    expect(() => parseSqlFile(`${head}SELECT {region:String}`, 'x')).toThrow(/does not declare/);
    expect(() => parseSqlFile(`${head}-- param a: UInt32\nSELECT 1`, 'x')).toThrow(/never uses/);
    expect(() => parseSqlFile(`${head}-- param a: UInt32 = banana\nSELECT {a:UInt32}`, 'x')).toThrow(/default of a is invalid/);
    expect(() => parseSqlFile(`${head}-- param region: String?\nSELECT {region:String}`, 'x')).toThrow(/Nullable\(String\)/);
  });

  it('lists the queries with typed parameters for planners, and only for planners', async () => {
    const res = await get('/v1/analytics/queries');
    expect(res.status).toBe(200);
    const forecast = res.body.queries.find((q: { name: string }) => q.name === 'capacity/demand-forecast');
    expect(forecast.params).toEqual(
      expect.arrayContaining([
        // The metric list comes from the catalogue (schemas/metrics.ts): gpu is offered too.
        { name: 'metric', type: 'Enum(cpu, memory, storage, bandwidth_in, bandwidth_out, gpu)', required: false, default: 'cpu', description: 'which metric' },
        expect.objectContaining({ name: 'weeks', type: 'UInt32', min: 1, max: 8 }),
      ]),
    );
    expect((await get('/v1/analytics/queries', 'billing')).status).toBe(403);
    expect((await fetch(`${base}/v1/analytics/queries`)).status).toBe(401);
  });

  it('validates parameters from the header with a message per parameter', async () => {
    const bad = await get('/v1/analytics/queries/fleet-size?from=yesterday&granularity=fortnight&colour=red');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_params');
    expect(bad.body.error.message).toContain('unknown parameter colour');
    const bad2 = await get('/v1/analytics/queries/fleet-size?from=yesterday&granularity=fortnight');
    expect(bad2.body.error.message).toMatch(/from must be RFC 3339/);
    expect(bad2.body.error.message).toMatch(/granularity must be one of hour, day, week, month/);
    // The name as the listing shows it, with its library, is the same query.
    const withLibrary = await get('/v1/analytics/queries/capacity/fleet-size?granularity=day');
    expect(withLibrary.status).toBe(200);
    expect(withLibrary.body).toEqual((await get('/v1/analytics/queries/fleet-size?granularity=day')).body);
    expect((await get('/v1/analytics/queries/nowhere/fleet-size')).status).toBe(404);
    const missing = await get('/v1/analytics/queries/storage-days-to-capacity');
    expect(missing.body.error.message).toBe('capacity_gib is required');
    const range = await get('/v1/analytics/queries/demand-forecast?weeks=9');
    expect(range.body.error.message).toBe('weeks must be between 1 and 8');
    expect((await get('/v1/analytics/queries/no-such-query')).status).toBe(404);
  });
});

describe('each named query against an independent computation', () => {
  const range = { from: iso(SYN_START), to: iso(SYN_END) };

  it('1. daily p95 and peak CPU utilization per region × instance type', async () => {
    const rows = await run('cpu-utilization-daily', range);
    const hourly = groupBy(cells.filter((c) => c.metric === 'cpu'), (c) => `${c.hour}|${c.region}|${c.resource_type}|${c.instance_type}`);
    const perHour = [...hourly.values()].map((cs) => ({
      ...cs[0]!, micros: sumBig(cs.map((c) => c.micros)), resources: sum(cs.map((c) => c.resources)),
      p95: Math.max(...cs.map((c) => c.p95)), max: Math.max(...cs.map((c) => c.max)),
    }));
    const groups = groupBy(perHour, (h) => `${day(h.hour)}|${h.region}|${h.resource_type}|${h.instance_type}`);
    expect(rows).toHaveLength(groups.size);
    for (const row of rows) {
      const g = groups.get(`${row.day}|${row.region}|${row.resource_type}|${row.instance_type}`)!;
      expect(g, JSON.stringify(row)).toBeDefined();
      const v = VCPUS[row.instance_type] ?? null;
      const label = `${row.day} ${row.region} ${row.instance_type}`;
      expect(row.vcpus).toBe(v);
      expect(Number(row.hours)).toBe(g.length);
      expect(Number(row.resource_hours)).toBe(sum(g.map((h) => h.resources)));
      const total = num(sumBig(g.map((h) => h.micros)));
      near(row.avg_busy_vcpus, total / 3600 / g.length, 3, `${label} busy`);
      if (v === null) {
        expect(row.avg_utilization).toBeNull();
        expect(row.peak_utilization).toBeNull();
        continue;
      }
      near(row.avg_utilization, total / (sum(g.map((h) => h.resources)) * v * 3600), 4, `${label} avg`);
      near(row.p95_hourly_utilization, quantileExact(g.map((h) => num(h.micros) / (h.resources * v * 3600)), 0.95), 4, `${label} p95`);
      near(row.worst_cell_p95_utilization, Math.max(...g.map((h) => h.p95)) / (v * 3600), 4, `${label} worst p95`);
      near(row.peak_utilization, Math.max(...g.map((h) => h.max)) / (v * 3600), 4, `${label} peak`);
    }
    // The eu-west-1 m5.large cohort is two zone cells, summed into one row per day.
    expect(rows.filter((r) => r.region === 'eu-west-1' && r.instance_type === 'm5.large')).toHaveLength(21);
  });

  it('2. memory and storage allocated over time per region, and growth rate', async () => {
    const rows = await run('memory-storage-allocated', { ...range, granularity: 'week' });
    const expected: Record<string, any>[] = [];
    for (const region of ['eu-west-1', 'us-east-1']) {
      const mem = regionHourly('memory').filter((h) => h.region === region);
      const sto = regionHourly('storage').filter((h) => h.region === region);
      let prev: { start: string; mem: number; sto: number } | undefined;
      for (const week of [...new Set(sto.map((h) => monday(h.hour)))].sort()) {
        const m = mem.filter((h) => monday(h.hour) === week).map((h) => num(h.micros) / 3600 / GiB);
        const s = sto.filter((h) => monday(h.hour) === week).map((h) => num(h.micros) / 3600 / GiB);
        const cur = { start: week, mem: sum(m) / m.length, sto: sum(s) / s.length };
        expected.push({
          period_start: week, region, hours: s.length, memory_gib: cur.mem, storage_gib: cur.sto,
          memory_change_gib: prev ? cur.mem - prev.mem : null,
          storage_change_gib: prev ? cur.sto - prev.sto : null,
          storage_growth_pct: prev ? 100 * (cur.sto / prev.sto - 1) : null,
          storage_growth_gib_per_day: prev ? (cur.sto - prev.sto) / ((Date.parse(week) - Date.parse(prev.start)) / DAY) : null,
        });
        prev = cur;
      }
    }
    expect(rows).toHaveLength(expected.length);
    rows.forEach((row, i) => {
      const want = expected[i]!;
      expect([row.period_start, row.region, Number(row.hours)]).toEqual([want.period_start, want.region, want.hours]);
      for (const k of ['memory_gib', 'storage_gib', 'memory_change_gib', 'storage_change_gib', 'storage_growth_pct', 'storage_growth_gib_per_day']) near(row[k], want[k], 3, `${want.region} ${want.period_start} ${k}`);
    });
  });

  it('3. days until a region\'s storage reaches a capacity, by a least-squares trend', async () => {
    const capacity = 40_000;
    const rows = await run('storage-days-to-capacity', { ...range, capacity_gib: String(capacity) });
    expect(rows.map((r) => r.region)).toEqual(['eu-west-1', 'us-east-1']);
    for (const row of rows) {
      const pts = regionHourly('storage').filter((h) => h.region === row.region).map((h) => ({ x: (h.hour - SYN_END) / DAY, y: num(h.micros) / 3600 / GiB }));
      const n = pts.length;
      const mx = sum(pts.map((q) => q.x)) / n;
      const my = sum(pts.map((q) => q.y)) / n;
      const slope = sum(pts.map((q) => (q.x - mx) * (q.y - my))) / sum(pts.map((q) => (q.x - mx) ** 2));
      const level = my - slope * mx;
      const days = level >= capacity ? 0 : slope <= 0 ? null : (capacity - level) / slope;
      expect(Number(row.hours)).toBe(n);
      near(row.trend_gib_per_day, slope, 4, 'slope');
      near(row.fitted_gib_at_to, level, 3, 'level');
      near(row.storage_gib_last, pts.at(-1)!.y, 3, 'last');
      near(row.days_to_capacity, days, 2, 'days');
      expect(row.reaches_capacity_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      expect(Math.abs(Date.parse(row.reaches_capacity_at) - (SYN_END + days! * DAY))).toBeLessThan(2000);
    }
    const full = await run('storage-days-to-capacity', { ...range, capacity_gib: '1000' });
    expect(full.map((r) => r.days_to_capacity)).toEqual([0, 0]); // already past it
  });

  it('4. bandwidth 95th percentile per region per month, burstable style', async () => {
    const rows = await run('bandwidth-p95-monthly', range);
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      const hours = regionHourly(row.direction === 'in' ? 'bandwidth_in' : 'bandwidth_out').filter((h) => h.region === row.region);
      const bytes = hours.map((h) => num(h.micros)).sort((a, b) => a - b);
      const n = bytes.length;
      // Drop the top 5 % of hourly samples, bill the highest one left.
      const billed = bytes[n - Math.floor((5 * n) / 100) - 1]!;
      const label = `${row.region} ${row.direction}`;
      expect(row.month).toBe('2026-01-01');
      expect(Number(row.hours)).toBe(n);
      near(row.p95_mbps, (billed * 8) / 3600 / 1e6, 3, `${label} p95`);
      near(row.peak_mbps, (bytes.at(-1)! * 8) / 3600 / 1e6, 3, `${label} peak`);
      near(row.mean_mbps, (sum(bytes) / n * 8) / 3600 / 1e6, 3, `${label} mean`);
      near(row.volume_gb, sum(bytes) / 1e9, 3, `${label} volume`);
    }
  });

  it('5. hour-of-week usage profile per region (heat-map data)', async () => {
    const rows = await run('hour-of-week-profile', { ...range, metric: 'cpu' });
    expect(rows).toHaveLength(2 * 168);
    for (const region of ['eu-west-1', 'us-east-1']) {
      const slots = groupBy(regionHourly('cpu').filter((h) => h.region === region), (h) => `${isoDow(h.hour)}|${new Date(h.hour).getUTCHours()}`);
      const values = new Map([...slots].map(([k, hs]) => [k, sum(hs.map((h) => num(h.micros) / 3600)) / hs.length]));
      const mean = sum([...values.values()]) / values.size;
      for (const row of rows.filter((r) => r.region === region)) {
        const k = `${row.day_of_week}|${row.hour_of_day}`;
        expect(Number(row.hours)).toBe(3);
        expect(row.unit).toBe('vCPU');
        near(row.value, values.get(k)!, 4, `${region} ${k}`);
        near(row.index, values.get(k)! / mean, 4, `${region} ${k} index`);
      }
    }
    // The shape is there: weekday afternoons above the night, weekends lower.
    const eu = new Map(rows.filter((r) => r.region === 'eu-west-1').map((r) => [`${r.day_of_week}|${r.hour_of_day}`, r.index as number]));
    expect(eu.get('3|14')!).toBeGreaterThan(eu.get('3|2')!);
    expect(eu.get('6|14')!).toBeLessThan(eu.get('3|14')!);
  });

  it('6. cohorts growing fastest week over week', async () => {
    const rows = await run('fastest-growing-cohorts', { to: iso(SYN_END), limit: '1000' });
    const weekOf = (ms: number) => (ms >= SYN_END - 7 * DAY ? 'this' : ms >= SYN_END - 14 * DAY ? 'prev' : undefined);
    const cohorts = groupBy(cells.filter((c) => weekOf(c.hour)), (c) => `${c.region}|${c.resource_type}|${c.instance_type}|${c.metric}`);
    const expected = [...cohorts].map(([key, cs]) => {
      const perHour = (w: string) => {
        const inWeek = cs.filter((c) => weekOf(c.hour) === w);
        return num(sumBig(inWeek.map((c) => c.micros))) / new Set(inWeek.map((c) => c.hour)).size;
      };
      const [region, resource_type, instance_type, metric] = key.split('|') as [string, string, string, string];
      const prev = perHour('prev');
      const cur = perHour('this');
      return { region, resource_type, instance_type, metric, prev: prev / NATURAL[metric]!, cur: cur / NATURAL[metric]!, ratio: cur / prev };
    });
    const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
    expected.sort((a, b) => b.ratio - a.ratio || cmp(a.region, b.region) || cmp(a.resource_type, b.resource_type) || cmp(a.instance_type, b.instance_type) || cmp(a.metric, b.metric));
    expect(rows).toHaveLength(expected.length);
    rows.forEach((row, i) => {
      const want = expected[i]!;
      expect([row.region, row.resource_type, row.instance_type, row.metric]).toEqual([want.region, want.resource_type, want.instance_type, want.metric]);
      near(row.previous_week, want.prev, 4, `${want.instance_type} ${want.metric} prev`);
      near(row.this_week, want.cur, 4, `${want.instance_type} ${want.metric} this`);
      near(row.growth_pct, 100 * (want.ratio - 1), 2, `${want.instance_type} ${want.metric} growth`);
    });
    // us-east-1 m5.xlarge grows 3 % a day: fastest of all.
    expect(rows[0]).toMatchObject({ region: 'us-east-1', instance_type: 'm5.xlarge' });
    expect(await run('fastest-growing-cohorts', { to: iso(SYN_END), limit: '3', metric: 'storage' })).toHaveLength(3);
  });

  it('5–8 with metric=gpu: busy GPUs, in the unit GPU, from GPU-seconds', async () => {
    const gpuHourly = regionHourly('gpu');
    expect(new Set(gpuHourly.map((h) => h.region))).toEqual(new Set(['eu-west-1']));

    const profile = await run('hour-of-week-profile', { ...range, metric: 'gpu' });
    expect(profile).toHaveLength(168);
    const slots = groupBy(gpuHourly, (h) => `${isoDow(h.hour)}|${new Date(h.hour).getUTCHours()}`);
    for (const row of profile) {
      const hs = slots.get(`${row.day_of_week}|${row.hour_of_day}`)!;
      expect(row).toMatchObject({ region: 'eu-west-1', unit: 'GPU' });
      near(row.value, sum(hs.map((h) => num(h.micros) / 3600)) / hs.length, 4, `gpu ${row.day_of_week}|${row.hour_of_day}`);
    }

    const growing = await run('fastest-growing-cohorts', { to: iso(SYN_END), limit: '10', metric: 'gpu' });
    expect(growing).toHaveLength(1);
    expect(growing[0]).toMatchObject({ region: 'eu-west-1', resource_type: 'vm', instance_type: 'c5.2xlarge', metric: 'gpu', unit: 'GPU' });
    // About 5 GPUs, 70 % busy on weekdays: the natural value is GPUs, not GPU-seconds.
    expect(growing[0]!.this_week).toBeGreaterThan(1);
    expect(growing[0]!.this_week).toBeLessThan(6);

    const forecast = await run('demand-forecast', { metric: 'gpu', as_of: iso(SYN_END), weeks: '2' });
    expect(forecast).toHaveLength(168);
    const slot = (ms: number) => isoDow(ms) * 24 + new Date(ms).getUTCHours();
    const lastTwoWeeks = groupBy(gpuHourly.filter((h) => h.hour >= SYN_END - 14 * DAY), (h) => String(slot(h.hour)));
    for (const row of forecast) {
      expect(row.unit).toBe('GPU');
      const hs = lastTwoWeeks.get(String(slot(Date.parse(String(row.hour)))))!;
      near(row.forecast, sum(hs.map((h) => num(h.micros) / 3600)) / hs.length, 4, `gpu forecast ${row.hour}`);
    }
  });

  it('7. fleet size per resource type over time', async () => {
    const rows = await run('fleet-size', { ...range, granularity: 'day' });
    const perHourType = groupBy(cells, (c) => `${c.hour}|${c.resource_type}`);
    const hourly = [...perHourType.values()].map((cs) => {
      const byMetric = groupBy(cs, (c) => c.metric);
      return { hour: cs[0]!.hour, type: cs[0]!.resource_type, resources: Math.max(...[...byMetric.values()].map((m) => sum(m.map((c) => c.resources)))) };
    });
    const days = groupBy(hourly, (h) => `${day(h.hour)}|${h.type}`);
    expect(rows).toHaveLength(days.size);
    for (const row of rows) {
      const g = days.get(`${row.period_start.slice(0, 10)}|${row.resource_type}`)!;
      expect(Number(row.hours)).toBe(g.length);
      near(row.avg_resources, sum(g.map((h) => h.resources)) / g.length, 2, `${row.period_start} ${row.resource_type}`);
      expect(Number(row.peak_resources)).toBe(Math.max(...g.map((h) => h.resources)));
    }
    expect(rows.find((r) => r.resource_type === 'network')!.hours).not.toBe('24'); // the gaps show
  });

  it('8. next-7-days demand forecast per region, with its error on the last known week', async () => {
    const rows = await run('demand-forecast', { metric: 'cpu', as_of: iso(SYN_END), weeks: '2' });
    expect(rows).toHaveLength(2 * 168);
    const slot = (ms: number) => isoDow(ms) * 24 + new Date(ms).getUTCHours();
    for (const region of ['eu-west-1', 'us-east-1']) {
      const hours = regionHourly('cpu').filter((h) => h.region === region).map((h) => ({ hour: h.hour, slot: slot(h.hour), v: num(h.micros) / 3600 }));
      const baseline = (from: number, to: number) => {
        const m = groupBy(hours.filter((h) => h.hour >= from && h.hour < to), (h) => String(h.slot));
        return new Map([...m].map(([s, hs]) => [Number(s), { f: sum(hs.map((h) => h.v)) / hs.length, n: hs.length }]));
      };
      const forecast = baseline(SYN_END - 14 * DAY, SYN_END);
      const back = baseline(SYN_END - 21 * DAY, SYN_END - 7 * DAY);
      const lastWeek = hours.filter((h) => h.hour >= SYN_END - 7 * DAY);
      const errors = lastWeek.map((h) => Math.abs(h.v - back.get(h.slot)!.f));
      const mae = sum(errors) / errors.length;
      const mape = (100 * sum(lastWeek.map((h, i) => errors[i]! / h.v))) / lastWeek.length;
      const mine = rows.filter((r) => r.region === region);
      mine.forEach((row, i) => {
        const t = SYN_END + i * HOUR;
        expect(row.hour).toBe(rfc3339(t));
        expect(Number(row.weeks_averaged)).toBe(2);
        near(row.forecast, forecast.get(slot(t))!.f, 4, `${region} ${row.hour}`);
        near(row.backtest_mae, mae, 4, `${region} mae`);
        near(row.backtest_mape_pct, mape, 2, `${region} mape`);
        expect(Number(row.backtest_hours)).toBe(168);
      });
    }
  });
});

describe('the planner view\'s usage and suppression report (issue 14)', () => {
  const range = { from: iso(SYN_START), to: iso(SYN_END) };

  /** Per hour × region × metric: the total, what of it is in generalized cells, the resources. */
  function regionHours(keep: (c: Cell) => boolean = () => true) {
    return [...groupBy(cells.filter(keep), (c) => `${c.hour}|${c.region}|${c.metric}`).values()].map((cs) => ({
      hour: cs[0]!.hour, region: cs[0]!.region, metric: cs[0]!.metric,
      total: num(sumBig(cs.map((c) => c.micros))),
      generalized: num(sumBig(cs.filter((c) => c.instance_type === '*' || c.zone === '*').map((c) => c.micros))),
      resources: sum(cs.map((c) => c.resources)),
    }));
  }

  function expectUsage(rows: Record<string, any>[], hours: ReturnType<typeof regionHours>, periodOf: (ms: number) => string) {
    const periods = groupBy(hours, (h) => `${periodOf(h.hour)}|${h.region}|${h.metric}`);
    expect(rows).toHaveLength(periods.size);
    const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
    const keys = [...periods.keys()].map((k) => k.split('|') as [string, string, string]).sort((a, b) => cmp(a[0], b[0]) || cmp(a[1], b[1]) || cmp(a[2], b[2]));
    rows.forEach((row, i) => {
      const [start, region, metric] = keys[i]!;
      expect([row.period_start, row.region, row.metric]).toEqual([start, region, metric]);
      const g = periods.get(`${start}|${region}|${metric}`)!;
      const label = `${start} ${region} ${metric}`;
      expect(Number(row.hours), label).toBe(g.length);
      near(row.avg_value, sum(g.map((h) => h.total)) / g.length / NATURAL[metric]!, 4, `${label} avg`);
      near(row.peak_value, Math.max(...g.map((h) => h.total)) / NATURAL[metric]!, 4, `${label} peak`);
      near(row.avg_resources, sum(g.map((h) => h.resources)) / g.length, 2, `${label} resources`);
      const total = sum(g.map((h) => h.total));
      near(row.generalized_pct, total === 0 ? null : (100 * sum(g.map((h) => h.generalized))) / total, 2, `${label} generalized`);
    });
  }

  const UNIT: Record<string, string> = { cpu: 'vCPU', memory: 'GiB', storage: 'GiB', bandwidth_in: 'Mbit/s', bandwidth_out: 'Mbit/s', gpu: 'GPU' };

  it('9. usage per region and metric per day, every metric in its natural unit, generalized cells included', async () => {
    const rows = await run('usage-by-region', { ...range, granularity: 'day' });
    expectUsage(rows, regionHours(), (ms) => rfc3339(Math.floor(ms / DAY) * DAY));
    for (const row of rows) expect(row.unit, row.metric).toBe(UNIT[row.metric]);
    // eu-west-1 has generalized cohorts (instance type or zone '*'): they are in its total.
    // Without them its CPU would read lower by exactly their share.
    const euCpu = rows.filter((r) => r.region === 'eu-west-1' && r.metric === 'cpu');
    const fineOnly = regionHours((c) => c.region === 'eu-west-1' && c.metric === 'cpu' && c.instance_type !== '*' && c.zone !== '*');
    for (const row of euCpu) {
      expect(row.generalized_pct).toBeGreaterThan(5);
      const fine = fineOnly.filter((h) => rfc3339(Math.floor(h.hour / DAY) * DAY) === row.period_start);
      expect(row.avg_value).toBeGreaterThan(sum(fine.map((h) => h.total)) / fine.length / 3600 + 0.5);
    }
  });

  it('9. usage per region by week and month, one metric and one region, hour by hour', async () => {
    const weekly = await run('usage-by-region', { ...range, granularity: 'week', metric: 'gpu' });
    expectUsage(weekly, regionHours((c) => c.metric === 'gpu'), (ms) => rfc3339(Date.parse(monday(ms))));
    expect(weekly.map((r) => r.unit)).toEqual(['GPU', 'GPU', 'GPU']);

    const monthly = await run('usage-by-region', { ...range, granularity: 'month', metric: 'bandwidth_out', region: 'us-east-1' });
    expectUsage(monthly, regionHours((c) => c.metric === 'bandwidth_out' && c.region === 'us-east-1'), () => rfc3339(Date.UTC(2026, 0, 1)));
    expect(monthly).toHaveLength(1);

    const hourly = await run('usage-by-region', { from: iso(SYN_START), to: iso(SYN_START + 6 * HOUR), granularity: 'hour', metric: 'memory' });
    expectUsage(hourly, regionHours((c) => c.metric === 'memory' && c.hour < SYN_START + 6 * HOUR), rfc3339);
    expect(hourly).toHaveLength(6 * 2);

    // A region is a bound value, never SQL; an unknown metric or granularity is refused by name.
    expect(await run('usage-by-region', { ...range, region: "us-east-1' OR '1'='1" })).toEqual([]);
    const bad = await get(`/v1/analytics/queries/usage-by-region?${new URLSearchParams({ metric: 'cpu_seconds', granularity: 'fortnight' })}`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/metric must be one of cpu, memory, storage, bandwidth_in, bandwidth_out, gpu/);
    expect((await get('/v1/analytics/queries/suppression-report?granularity=week')).body.error.message).toMatch(/granularity must be one of hour, day/);
  });

  /** The seeded report's newest row per hour and metric, grouped as the query groups it. */
  function expectReport(rows: Record<string, any>[], periodOf: (ms: number) => string, keep: (r: ReportRow) => boolean = () => true) {
    const newest = [...groupBy(syntheticReport().filter(keep), (r) => `${r.hour}|${r.metric}`).values()].map((rs) => rs.reduce((a, b) => (b.version > a.version ? b : a)));
    const periods = groupBy(newest, (r) => `${periodOf(r.hour)}|${r.metric}`);
    expect(rows).toHaveLength(periods.size);
    for (const row of rows) {
      const g = periods.get(`${row.period_start}|${row.metric}`)!;
      expect(g, JSON.stringify(row)).toBeDefined();
      const total = sum(g.map((r) => r.total));
      const suppressed = sum(g.map((r) => r.suppressed));
      const ks = g.map((r) => r.k);
      expect({
        hours: Number(row.hours), resource_hours: Number(row.resource_hours), published: Number(row.published),
        generalized: Number(row.generalized), zone_generalized: Number(row.zone_generalized),
        label_generalized: Number(row.label_generalized), suppressed: Number(row.suppressed), k: row.k, k_max: row.k_max,
      }, `${row.period_start} ${row.metric}`).toEqual({
        hours: g.length, resource_hours: total, published: total - suppressed,
        // Published with '*': the generalized count less the suppressed of the same hour.
        generalized: sum(g.map((r) => Math.max(0, r.generalized - r.suppressed))),
        zone_generalized: sum(g.map((r) => Math.max(0, r.zoneGeneralized - r.suppressed))),
        label_generalized: sum(g.map((r) => r.labelGeneralized)), suppressed, k: Math.min(...ks), k_max: Math.max(...ks),
      });
      near(row.suppressed_pct, total === 0 ? null : (100 * suppressed) / total, 2, `${row.period_start} ${row.metric} %`);
    }
  }

  it('10. the suppression report per day and metric: the newest version of each hour, the k used', async () => {
    const rows = await run('suppression-report', { ...range, granularity: 'day' });
    expectReport(rows, (ms) => rfc3339(Math.floor(ms / DAY) * DAY));
    expect(rows.some((r) => Number(r.suppressed) > 0)).toBe(true);
    // The day K_ANONYMITY changed shows both values; the day before one.
    const changed = rows.filter((r) => r.period_start === rfc3339(Math.floor(K_CHANGE / DAY) * DAY));
    expect(changed.map((r) => [r.k, r.k_max])).toEqual(changed.map(() => [2, 3]));
    // Hours recorded before k was kept read k = 0, and their generalized counts never go negative.
    const first = rows.filter((r) => r.period_start === rfc3339(SYN_START));
    expect(first.every((r) => r.k === 0 && Number(r.generalized) >= 0)).toBe(true);
  });

  it('10. the suppression report per hour for one metric', async () => {
    const from = TWICE + 49 * HOUR;
    const to = TWICE + 52 * HOUR;
    const rows = await run('suppression-report', { from: iso(from), to: iso(to), granularity: 'hour', metric: 'storage' });
    expectReport(rows, rfc3339, (r) => r.metric === 'storage' && r.hour >= from && r.hour < to);
    expect(rows.map((r) => r.period_start)).toEqual([rfc3339(from), rfc3339(from + HOUR), rfc3339(from + 2 * HOUR)]);
    // The middle hour was computed twice, and both computations are still stored: the older
    // one (100 suppressed) is not counted.
    const stored = await p.ch!.query({ query: `SELECT count() AS n FROM analytics.suppression_hourly WHERE hour = {h:DateTime('UTC')} AND metric = 'storage'`, query_params: { h: chTime(TWICE + 50 * HOUR) }, format: 'JSONEachRow' });
    expect(await stored.json()).toEqual([{ n: '2' }]);
    expect(rows.every((r) => Number(r.suppressed) < 100)).toBe(true);
  });
});

describe('end to end from simulated samples', () => {
  const live = { from: iso(LIVE_START), to: iso(LIVE_END) };

  it('counts the simulated fleet per resource type, hour by hour', async () => {
    const rows = await run('fleet-size', { ...live, granularity: 'hour' });
    const counts = groupBy(liveFleet.resources, (r) => r.type);
    expect(rows).toHaveLength(6 * counts.size);
    for (const row of rows) {
      expect(Number(row.peak_resources), `${row.period_start} ${row.resource_type}`).toBe(counts.get(row.resource_type)!.length);
    }
  });

  it('reports the memory the simulated VMs and databases hold, in GiB', async () => {
    const rows = await run('memory-storage-allocated', { ...live, granularity: 'day' });
    const gib = sum(liveFleet.resources.filter((r) => r.metrics.includes('memory')).map((r) => r.profile.memoryBytes)) / GiB;
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.region).toBe('eu-central-1');
      expect(row.memory_gib).toBe(Math.round(gib * 1000) / 1000);
    }
  });
});

describe('a generalized and a suppressed cohort, through the pipeline', () => {
  const edge = { from: iso(EDGE_START), to: iso(LIVE_START), granularity: 'hour' };
  const published = EDGE.map((e, i) => ({ ...e, i })).filter((e) => e.fate !== 'suppressed');

  it('usage per region counts every published VM, the generalized ones included, and none suppressed', async () => {
    const rows = await run('usage-by-region', edge);
    // ap-east-9's only VM was suppressed: no row, not a zero.
    expect(new Set(rows.map((r) => r.region))).toEqual(new Set(['eu-north-1']));
    expect(rows).toHaveLength(3 * 2);
    for (const row of rows) {
      const h = (Date.parse(row.period_start) - EDGE_START) / HOUR;
      const base = (i: number) => (row.metric === 'cpu' ? edgeCpu(i, h) : edgeMemory(i, h) * 3600);
      const total = sum(published.map((e) => base(e.i)));
      const generalized = sum(published.filter((e) => e.fate !== 'fine').map((e) => base(e.i)));
      const label = `${row.period_start} ${row.metric}`;
      expect(Number(row.hours), label).toBe(1);
      expect(row.unit).toBe(row.metric === 'cpu' ? 'vCPU' : 'GiB');
      near(row.avg_value, total / NATURAL[row.metric]!, 4, label);
      near(row.peak_value, total / NATURAL[row.metric]!, 4, label);
      near(row.generalized_pct, (100 * generalized) / total, 2, `${label} generalized`);
      expect(row.avg_resources, label).toBe(published.length);
    }
  });

  it('the suppression report says what the rollup did to each, and agrees with the answer\'s shaped_by', async () => {
    const res = await get(`/v1/analytics/queries/suppression-report?${new URLSearchParams(edge)}`);
    expect(res.status, res.text).toBe(200);
    const rows: Record<string, any>[] = res.body.rows;
    const count = (f: (e: (typeof EDGE)[number]) => boolean) => EDGE.filter(f).length;
    const want = {
      hours: 1, resource_hours: EDGE.length, published: count((e) => e.fate !== 'suppressed'),
      generalized: count((e) => e.fate === 'generalized' || e.fate === 'zone-generalized'),
      zone_generalized: count((e) => e.fate === 'zone-generalized'),
      label_generalized: count((e) => 'labelWithheld' in e && e.labelWithheld), suppressed: count((e) => e.fate === 'suppressed'),
      k: 2, k_max: 2,
    };
    expect(want.suppressed).toBe(1);
    expect(rows.map((r) => [r.period_start, r.metric])).toEqual([0, 1, 2].flatMap((h) => [[rfc3339(EDGE_START + h * HOUR), 'cpu'], [rfc3339(EDGE_START + h * HOUR), 'memory']]));
    for (const row of rows) {
      const got = Object.fromEntries(Object.keys(want).map((k) => [k, Number(row[k])]));
      expect(got, `${row.period_start} ${row.metric}`).toEqual(want);
      near(row.suppressed_pct, (100 * want.suppressed) / want.resource_hours, 2, 'suppressed %');
    }
    // The same hours as the answer's own account of what shaped it (read by other SQL).
    const byMetric = new Map<string, any>(res.body.shaped_by.privacy.by_metric.map((m: any) => [m.metric, m]));
    for (const metric of ['cpu', 'memory']) {
      const mine = rows.filter((r) => r.metric === metric);
      expect(byMetric.get(metric)).toMatchObject({
        hours: mine.length, resource_hours: sum(mine.map((r) => Number(r.resource_hours))),
        generalized: sum(mine.map((r) => Number(r.generalized))), suppressed: sum(mine.map((r) => Number(r.suppressed))),
        label_withheld: sum(mine.map((r) => Number(r.label_generalized))),
      });
    }
    // One metric: the report and its shape count that metric only.
    const cpu = await get(`/v1/analytics/queries/suppression-report?${new URLSearchParams({ ...edge, granularity: 'day', metric: 'cpu' })}`);
    expect(cpu.body.rows.every((r: any) => r.metric === 'cpu')).toBe(true);
    expect(sum(cpu.body.rows.map((r: any) => Number(r.suppressed)))).toBe(3 * want.suppressed);
    expect(cpu.body.shaped_by.privacy.by_metric.map((m: any) => m.metric)).toEqual(['cpu']);
  });
});

describe('formats and the CLI', () => {
  it('answers CSV with a header row', async () => {
    const res = await get(`/v1/analytics/queries/fleet-size?${new URLSearchParams({ from: iso(SYN_START), to: iso(SYN_START + DAY), format: 'csv' })}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = res.text.trim().split('\n');
    expect(lines[0]).toBe('"period_start","resource_type","hours","avg_resources","peak_resources"');
    expect(lines).toHaveLength(1 + 5); // five resource types in the simulated analytics
  });

  it('runs `query capacity/<name>` against the API as a table, JSON and CSV', async () => {
    const out = capture();
    const code = await runQueryCommand(['capacity/fleet-size', '--param', `from=${iso(SYN_START)}`, '--param', `to=${iso(SYN_START + DAY)}`, '--url', base, '--key', KEYS.planner], out.io);
    expect(code, out.err()).toBe(0);
    expect(out.text()).toMatch(/period_start\s+resource_type\s+hours\s+avg_resources\s+peak_resources/);
    expect(out.text()).toMatch(/2026-01-05T00:00:00Z\s+volume\s+24\s+20\s+20/);

    const json = capture();
    expect(await runQueryCommand(['fleet-size', '--format', 'json', '--param', `from=${iso(SYN_START)}`, '--param', `to=${iso(SYN_START + DAY)}`, '--url', base, '--key', KEYS.planner], json.io)).toBe(0);
    expect(JSON.parse(json.text())).toHaveLength(5);

    const denied = capture();
    expect(await runQueryCommand(['fleet-size', '--url', base, '--key', KEYS.billing], denied.io)).toBe(1);
    expect(denied.err()).toMatch(/403 forbidden: this endpoint needs a planner key/);
  });

  it('runs the same query straight against ClickHouse without --url', async () => {
    const out = capture();
    const code = await runQueryCommand(
      ['capacity/bandwidth-p95-monthly', '--format', 'csv', '--param', `from=${iso(SYN_START)}`, '--param', `to=${iso(SYN_END)}`, '--data-dir', p.dataDir],
      out.io,
    );
    expect(code, out.err()).toBe(0);
    const http = await get(`/v1/analytics/queries/bandwidth-p95-monthly?${new URLSearchParams({ ...{ from: iso(SYN_START), to: iso(SYN_END) }, format: 'csv' })}`);
    expect(out.text()).toBe(http.text);
  });

  it('prints a query\'s parameters with --help', async () => {
    const out = capture();
    expect(await runQueryCommand(['capacity/storage-days-to-capacity', '--help'], out.io)).toBe(0);
    expect(out.text()).toMatch(/--param capacity_gib=<Float64 0\.\.1000000000000>\s+the region's usable storage capacity, GiB \(required\)/);
  });
});

function capture() {
  const chunks: string[] = [];
  const errs: string[] = [];
  const sink = (into: string[]) => ({ write: (s: string | Uint8Array) => (into.push(typeof s === 'string' ? s : Buffer.from(s).toString()), true) }) as unknown as NodeJS.WritableStream;
  return { io: { stdout: sink(chunks), stderr: sink(errs) }, text: () => chunks.join(''), err: () => errs.join('') };
}
