/**
 * Training datasets (queries/datasets/) on a real pipeline fed by the fleet simulator:
 * the Parquet export read back by an independent reader (hyparquet) and the CSV export
 * both equal the rows computed here from the analytics cells; the data card's counts are
 * right; the time-based split leaks no future into training; the CLI writes the file and
 * its card; and no identifier of the simulated fleet appears in any export.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { scratchDirs } from './support/temp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDatasetCommand } from '../cli/dataset.js';
import { queryRows } from '../lib/clickhouse.js';
import { scanFile } from '../queries/leak-scan.js';
import type { KeyRole } from '../schemas/config.js';
import { createFleet, generateSamples } from '../sim/index.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
const GiB = 1024 ** 3;
const K = 2;
const HOURS = 30;
const END = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
const START = END - HOURS * HOUR;
const FROM = START + 2 * HOUR; // lags reach back before the export: they must come from the data anyway
const VALIDATION_FROM = END - 6 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();

const fleet = createFleet({ accounts: 16, resources: 40, seed: 3 });
for (const r of fleet.resources) r.region = Number(r.accountId.slice(-2)) % 2 ? 'eu-west-1' : 'us-east-1';
// GPUs on the VMs of accounts 1, 5, 9, 13 (all eu-west-1): enough accounts for gpu cells of
// at least k. The simulator draws gpu values from a stream of their own, so every other
// metric's samples are what they were.
for (const r of fleet.resources) {
  if (r.type !== 'vm' || r.metrics.includes('gpu') || Number(r.accountId.slice(-2)) % 4 !== 1) continue;
  r.metrics = [...r.metrics, 'gpu'];
  r.profile.gpus = 2;
  r.profile.gpuBaseUtil = 0.6;
}

const tempDir = scratchDirs();

let p: TestPipeline;
let base: string;

interface Expected {
  hour: number;
  region: string;
  resource_type: string;
  instance_type: string;
  metric: string;
  generalized: number;
  cells: number;
  min_cell_accounts: number;
  resources: number;
  samples: number;
  total_base: string;
  value: number;
  max_per_resource: number;
  value_lag_1h: number | null;
  value_lag_24h: number | null;
  value_lag_168h: number | null;
  value_mean_prev_24h: number | null;
}

let expected: Expected[] = [];

async function get(pathAndQuery: string, role: KeyRole = 'datascience') {
  const res = await fetch(`${base}${pathAndQuery}`, { headers: { authorization: `Bearer ${KEYS[role]}` } });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

const query = (params: Record<string, string>) => new URLSearchParams({ from: iso(FROM), to: iso(END), ...params }).toString();

beforeAll(async () => {
  p = await startTestPipeline('consumers-datasets', { K_ANONYMITY: String(K) });
  for (const batch of generateSamples(fleet, { start: START, hours: HOURS, stepS: 3600, batchSize: 2500, duplicateRate: 0, invalidRate: 0 })) {
    expect((await p.post(batch.items)).status).toBe(202);
  }
  await p.waitIdle();
  expected = await expectedRows();

  // The pipeline serves these routes itself: the tests go through its real wiring.
  base = p.url;
});

afterAll(async () => {
  await p?.stop();
});

/**
 * The dataset's rows computed here from the published analytics cells (a plain SELECT *),
 * with exact totals in BigInt: cells of a series in one hour summed, natural units, lags by
 * looking the series up 1, 24 and 168 hours earlier.
 */
async function expectedRows(): Promise<Expected[]> {
  const cells = await queryRows<Record<string, string>>(p.ch!, 'SELECT * FROM analytics.fleet_usage_hourly');
  const rows = new Map<string, Expected & { micros: bigint; maxBase: number }>();
  for (const c of cells) {
    const hour = Date.parse(`${c.hour!.replace(' ', 'T')}Z`);
    const key = `${hour}|${c.region}|${c.resource_type}|${c.instance_type}|${c.metric}`;
    const [whole = '0', frac = ''] = c.total!.split('.');
    const micros = BigInt(whole) * 1_000_000n + BigInt(frac.padEnd(6, '0'));
    const r = rows.get(key) ?? {
      hour, region: c.region!, resource_type: c.resource_type!, instance_type: c.instance_type!, metric: c.metric!,
      generalized: 0, cells: 0, min_cell_accounts: Infinity, resources: 0, samples: 0, total_base: '', value: 0, max_per_resource: 0,
      value_lag_1h: null, value_lag_24h: null, value_lag_168h: null, value_mean_prev_24h: null, micros: 0n, maxBase: 0,
    };
    r.micros += micros;
    r.cells += 1;
    r.resources += Number(c.resources);
    r.samples += Number(c.samples);
    r.min_cell_accounts = Math.min(r.min_cell_accounts, Number(c.accounts));
    r.generalized = Math.max(r.generalized, Number(c.generalized));
    r.maxBase = Math.max(r.maxBase, Number(c.max));
    rows.set(key, r);
  }
  const divisor = (m: string) => (m === 'cpu' || m === 'gpu' ? 3600 : m === 'memory' || m === 'storage' ? 3600 * GiB : (3600 * 1e6) / 8);
  for (const r of rows.values()) {
    const frac = (r.micros % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
    r.total_base = frac ? `${r.micros / 1_000_000n}.${frac}` : `${r.micros / 1_000_000n}`;
    r.value = Number(r.micros) / 1e6 / divisor(r.metric);
    r.max_per_resource = r.maxBase / divisor(r.metric);
  }
  const at = (r: Expected, hour: number) => rows.get(`${hour}|${r.region}|${r.resource_type}|${r.instance_type}|${r.metric}`)?.value ?? null;
  for (const r of rows.values()) {
    r.value_lag_1h = at(r, r.hour - HOUR);
    r.value_lag_24h = at(r, r.hour - 24 * HOUR);
    r.value_lag_168h = at(r, r.hour - 168 * HOUR);
    const prev = Array.from({ length: 24 }, (_, i) => at(r, r.hour - (i + 1) * HOUR)).filter((v): v is number => v !== null);
    r.value_mean_prev_24h = prev.length ? prev.reduce((a, b) => a + b, 0) / prev.length : null;
  }
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...rows.values()]
    .filter((r) => r.hour >= FROM && r.hour < END)
    .sort((a, b) => a.hour - b.hour || cmp(a.region, b.region) || cmp(a.resource_type, b.resource_type) || cmp(a.instance_type, b.instance_type) || cmp(a.metric, b.metric));
}

function closeTo(got: unknown, want: number | null, label: string): void {
  if (want === null) {
    expect(got === null || got === undefined || got === '', `${label}: ${String(got)} should be empty`).toBe(true);
    return;
  }
  const n = typeof got === 'bigint' ? Number(got) : Number(got);
  expect(Math.abs(n - want), `${label}: ${String(got)} vs ${want}`).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(want)));
}

/** One exported row (from Parquet or CSV) against the expected one. */
function compare(got: Record<string, unknown>, want: Expected, split: string, label: string): void {
  // Parquet: a UTC timestamp; CSV: ISO 8601 with its zone.
  if (!(got.hour instanceof Date)) expect(String(got.hour), label).toMatch(/^\d{4}-\d\d-\d\dT\d\d:00:00\.000Z$/);
  const hour = got.hour instanceof Date ? got.hour.getTime() : Date.parse(String(got.hour));
  expect(hour, label).toBe(want.hour);
  expect([got.region, got.resource_type, got.instance_type, got.metric], label).toEqual([want.region, want.resource_type, want.instance_type, want.metric]);
  for (const k of ['generalized', 'cells', 'min_cell_accounts', 'resources', 'samples'] as const) expect(Number(got[k]), `${label} ${k}`).toBe(want[k]);
  expect(got.unit).toBe(want.metric === 'cpu' ? 'vCPU' : want.metric === 'gpu' ? 'GPU' : want.metric.startsWith('bandwidth') ? 'Mbit/s' : 'GiB');
  const d = new Date(want.hour);
  expect([Number(got.hour_of_day), Number(got.day_of_week), Number(got.is_weekend), Number(got.day_of_month), Number(got.month)], `${label} calendar`).toEqual([
    d.getUTCHours(), ((d.getUTCDay() + 6) % 7) + 1, d.getUTCDay() === 0 || d.getUTCDay() === 6 ? 1 : 0, d.getUTCDate(), d.getUTCMonth() + 1,
  ]);
  closeTo(got.value, want.value, `${label} value`);
  closeTo(got.value_per_resource, want.value / want.resources, `${label} value_per_resource`);
  closeTo(got.max_per_resource, want.max_per_resource, `${label} max_per_resource`);
  closeTo(got.value_lag_1h, want.value_lag_1h, `${label} lag 1h`);
  closeTo(got.value_lag_24h, want.value_lag_24h, `${label} lag 24h`);
  closeTo(got.value_lag_168h, want.value_lag_168h, `${label} lag 168h`);
  closeTo(got.value_mean_prev_24h, want.value_mean_prev_24h, `${label} mean prev 24h`);
  expect(got.split, label).toBe(split);
}

const splitOf = (r: Expected) => (r.hour < VALIDATION_FROM ? 'train' : 'validation');

async function readParquet(bytes: Buffer): Promise<Record<string, unknown>[]> {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return (await parquetReadObjects({ file })) as Record<string, unknown>[];
}

/** RFC 4180 CSV, as ClickHouse writes it (quoted strings, "" inside). */
function parseCsv(text: string): Record<string, string>[] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') record.push(field), (field = '');
    else if (ch === '\n') record.push(field), records.push(record), (record = []), (field = '');
    else field += ch;
  }
  const [header, ...rows] = records;
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i] ?? ''])));
}

describe('the fleet-demand dataset', () => {
  it('covers what the simulation produced, with generalized cells and suppression to report', () => {
    expect(expected.length).toBeGreaterThan(500);
    expect(expected.some((r) => r.instance_type === '*')).toBe(true);
    expect(expected.some((r) => r.value_lag_24h !== null)).toBe(true);
  });

  it('has gpu series, in busy GPUs from GPU-seconds', async () => {
    const gpu = expected.filter((r) => r.metric === 'gpu');
    expect(gpu.length).toBeGreaterThan(0);
    expect(gpu.every((r) => r.region === 'eu-west-1' && r.resource_type === 'vm' && r.min_cell_accounts >= K)).toBe(true);
    const rows = parseCsv((await get(`/v1/analytics/datasets/fleet-demand?${query({ format: 'csv' })}`)).bytes.toString('utf8')).filter((r) => r.metric === 'gpu');
    expect(rows).toHaveLength(gpu.length);
    for (const row of rows) {
      expect([row.unit, row.base_unit]).toEqual(['GPU', 'GPU-second']);
      // At most the GPUs behind the row (2 per VM), at least something.
      expect(Number(row.value)).toBeGreaterThan(0);
      expect(Number(row.value)).toBeLessThanOrEqual(2 * Number(row.resources));
    }
  });

  it('exports Parquet that an independent reader reads back as exactly the source rows', async () => {
    const res = await get(`/v1/analytics/datasets/fleet-demand?${query({ validation_from: iso(VALIDATION_FROM) })}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.apache.parquet');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="fleet-demand_.*\.parquet"$/);
    expect(res.headers.get('link')).toMatch(/^<\/v1\/analytics\/datasets\/fleet-demand\/card\?.*>; rel="describedby"$/);
    const file = res.bytes.buffer.slice(res.bytes.byteOffset, res.bytes.byteOffset + res.bytes.byteLength) as ArrayBuffer;
    const schema = parquetMetadata(file).schema;
    expect(schema.find((s) => s.name === 'hour')?.logical_type).toMatchObject({ type: 'TIMESTAMP', isAdjustedToUTC: true });
    expect(schema.find((s) => s.name === 'total_base')?.logical_type).toMatchObject({ type: 'DECIMAL', scale: 6 });
    const rows = await readParquet(res.bytes);
    expect(rows).toHaveLength(expected.length);
    rows.forEach((row, i) => {
      const want = expected[i]!;
      compare(row, want, splitOf(want), `parquet row ${i}`);
      closeTo(row.total_base, Number(want.total_base), `parquet row ${i} total_base`);
    });
  });

  it('exports CSV with the same rows, exact decimal totals and empty cells for missing lags', async () => {
    const res = await get(`/v1/analytics/datasets/fleet-demand?${query({ validation_from: iso(VALIDATION_FROM), format: 'csv' })}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const rows = parseCsv(res.bytes.toString('utf8'));
    expect(rows).toHaveLength(expected.length);
    rows.forEach((row, i) => {
      const want = expected[i]!;
      compare(row, want, splitOf(want), `csv row ${i}`);
      expect(row.total_base, `csv row ${i}`).toBe(want.total_base);
    });
    expect(rows.some((r) => r.value_lag_168h === '')).toBe(true); // no week of history here
  });

  it('has a data card with the schema and units, the time range, the split, k and the privacy cost', async () => {
    const res = await get(`/v1/analytics/datasets/fleet-demand/card?${query({ validation_from: iso(VALIDATION_FROM) })}`);
    expect(res.status).toBe(200);
    const card = JSON.parse(res.bytes.toString('utf8'));
    const [supp] = await queryRows<Record<string, string>>(
      p.ch!,
      `SELECT sum(resources_total) AS t, sum(resources_generalized) AS g, sum(resources_suppressed) AS s FROM analytics.suppression_hourly FINAL
       WHERE hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}`,
      { from: FROM / 1000, to: END / 1000 },
    );
    const train = expected.filter((r) => splitOf(r) === 'train').length;
    expect(card).toMatchObject({
      dataset: 'fleet-demand',
      schema_version: 1,
      time_range: { from: iso(FROM), to: iso(END), first_hour: iso(FROM), last_hour: iso(END - HOUR) },
      rows: expected.length,
      series: new Set(expected.map((r) => `${r.region}|${r.resource_type}|${r.instance_type}|${r.metric}`)).size,
      series_key: ['region', 'resource_type', 'instance_type', 'metric'],
      split: {
        exported: 'all',
        validation_from: iso(VALIDATION_FROM),
        train: { from: iso(FROM), to: iso(VALIDATION_FROM), rows: train },
        validation: { from: iso(VALIDATION_FROM), to: iso(END), rows: expected.length - train },
      },
      privacy: {
        k: K,
        min_cell_accounts: Math.min(...expected.map((r) => r.min_cell_accounts)),
        generalized_rows: expected.filter((r) => r.generalized === 1).length,
        suppression: { resource_hours: Number(supp!.t), generalized: Number(supp!.g), suppressed: Number(supp!.s) },
      },
    });
    expect(card.privacy.min_cell_accounts).toBeGreaterThanOrEqual(K);
    expect(card.privacy.suppression.generalized).toBeGreaterThan(0);
    const byName = new Map(card.columns.map((c: { name: string }) => [c.name, c]));
    expect(byName.get('total_base')).toMatchObject({ type: 'Decimal(38, 6)', unit: 'base_unit' });
    expect(byName.get('value')).toMatchObject({ type: 'Float64', unit: 'unit' });
    expect(byName.get('hour')).toMatchObject({ type: "DateTime64(3, 'UTC')", unit: 'UTC' });
    // Every column the file has is documented, with its ClickHouse type.
    const parquet = await readParquet((await get(`/v1/analytics/datasets/fleet-demand?${query({})}`)).bytes);
    expect(card.columns.map((c: { name: string }) => c.name)).toEqual(Object.keys(parquet[0]!));
    expect(card.columns.every((c: { type: string }) => c.type !== 'unknown')).toBe(true);
  });

  it('splits by time so that no training row depends on anything at or after validation_from', async () => {
    const rowsOf = async (params: Record<string, string>) => readParquet((await get(`/v1/analytics/datasets/fleet-demand?${new URLSearchParams(params)}`)).bytes);
    const train = await rowsOf({ from: iso(FROM), to: iso(END), validation_from: iso(VALIDATION_FROM), split: 'train' });
    const validation = await rowsOf({ from: iso(FROM), to: iso(END), validation_from: iso(VALIDATION_FROM), split: 'validation' });
    expect(train.length + validation.length).toBe(expected.length);
    expect(train.every((r) => (r.hour as Date).getTime() < VALIDATION_FROM && r.split === 'train')).toBe(true);
    expect(validation.every((r) => (r.hour as Date).getTime() >= VALIDATION_FROM && r.split === 'validation')).toBe(true);
    // The training rows exported with the future present equal those exported from a world
    // that ends at validation_from: the future changed nothing in them.
    const past = await rowsOf({ from: iso(FROM), to: iso(VALIDATION_FROM) });
    expect(train).toEqual(past);
  });

  it('refuses bad parameters, unknown datasets and keys of other roles', async () => {
    const bad = await get(`/v1/analytics/datasets/fleet-demand?${query({ split: 'test' })}`);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.bytes.toString()).error.message).toMatch(/split must be one of all, train, validation/);
    const backwards = await get(`/v1/analytics/datasets/fleet-demand?${new URLSearchParams({ from: iso(END), to: iso(FROM) })}`);
    expect(JSON.parse(backwards.bytes.toString()).error.message).toBe('from must be before to');
    expect((await get(`/v1/analytics/datasets/fleet-demand?${query({ format: 'xlsx' })}`)).status).toBe(400);
    expect((await get('/v1/analytics/datasets/nope')).status).toBe(404);
    expect((await get(`/v1/analytics/datasets/fleet-demand?${query({})}`, 'planner')).status).toBe(403);
    expect((await get('/v1/analytics/datasets', 'billing')).status).toBe(403);
    const list = JSON.parse((await get('/v1/analytics/datasets')).bytes.toString());
    expect(list.datasets.map((d: { name: string }) => d.name)).toContain('fleet-demand');
  });

  it('holds no identifier of the simulated fleet, by itself and by the privacy scanner', async () => {
    const csv = (await get(`/v1/analytics/datasets/fleet-demand?${query({ format: 'csv' })}`)).bytes;
    const text = csv.toString();
    for (const r of fleet.resources) {
      expect(text).not.toContain(r.id);
      expect(text).not.toContain(r.accountId);
    }
    expect(text).not.toMatch(/acct-\d/);
    const dir = tempDir('um-ds-scan-');
    writeFileSync(path.join(dir, 'd.csv'), csv);
    writeFileSync(path.join(dir, 'd.parquet'), (await get(`/v1/analytics/datasets/fleet-demand?${query({})}`)).bytes);
    expect((await scanFile(p.ch!, path.join(dir, 'd.parquet'))).hits).toEqual([]);
    expect((await scanFile(p.ch!, path.join(dir, 'd.csv'))).hits).toEqual([]);
  });
});

describe('the dataset CLI', () => {
  it('writes Parquet and its card from the API, with the same rows', async () => {
    const dir = tempDir('um-ds-');
    const out = path.join(dir, 'demand.parquet');
    const io = capture();
    const code = await runDatasetCommand(['fleet-demand', '--out', out, '--from', iso(FROM), '--to', iso(END), '--validation-from', iso(VALIDATION_FROM), '--url', base, '--key', KEYS.datascience, '--quiet'], io.io);
    expect(code, io.err()).toBe(0);
    const rows = await readParquet(readFileSync(out));
    expect(rows).toHaveLength(expected.length);
    rows.forEach((row, i) => compare(row, expected[i]!, splitOf(expected[i]!), `cli row ${i}`));
    const card = JSON.parse(readFileSync(`${out}.card.json`, 'utf8'));
    expect(card).toMatchObject({ dataset: 'fleet-demand', rows: expected.length, split: { validation_from: iso(VALIDATION_FROM) } });
    expect(io.err()).toMatch(/fleet-demand: \d+ rows, \d+ series, .* of parquet → /);
  });

  it('writes CSV straight from ClickHouse, identical to the API\'s', async () => {
    const dir = tempDir('um-ds-');
    const out = path.join(dir, 'demand.csv');
    const io = capture();
    expect(await runDatasetCommand(['fleet-demand', '--out', out, '--from', iso(FROM), '--to', iso(END), '--data-dir', p.dataDir, '--quiet'], io.io), io.err()).toBe(0);
    const http = (await get(`/v1/analytics/datasets/fleet-demand?${query({ format: 'csv' })}`)).bytes.toString();
    expect(readFileSync(out, 'utf8')).toBe(http);
  });

  it('explains a bad request without writing anything', async () => {
    const dir = tempDir('um-ds-');
    const out = path.join(dir, 'x.parquet');
    const io = capture();
    expect(await runDatasetCommand(['fleet-demand', '--out', out, '--split', 'test', '--url', base, '--key', KEYS.datascience, '--quiet'], io.io)).toBe(1);
    expect(io.err()).toMatch(/400 invalid_params: split must be one of all, train, validation/);
    expect(() => readFileSync(out)).toThrow();
  });
});

function capture() {
  const chunks: string[] = [];
  const errs: string[] = [];
  const sink = (into: string[]) => ({ write: (s: string | Uint8Array) => (into.push(typeof s === 'string' ? s : Buffer.from(s).toString()), true) }) as unknown as NodeJS.WritableStream;
  return { io: { stdout: sink(chunks), stderr: sink(errs) }, text: () => chunks.join(''), err: () => errs.join('') };
}
