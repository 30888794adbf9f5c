/**
 * End to end on real parts: HTTP → BullMQ on Redis → embedded ClickHouse → usage API.
 * Batches as JSON array, { samples }, and NDJSON, with exact duplicates, same-key
 * duplicates under other ids and invalid items. Totals must equal an independent oracle.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../lib/clickhouse.js';
import { decimalToMicros, expectedTotals, type SentSample } from './support/oracle.js';
import { startTestPipeline, type TestPipeline } from './support/pipeline.js';

const K = 5;
const HOUR = 3_600_000;
const end = Math.floor(Date.now() / HOUR) * HOUR;
const start = end - 3 * HOUR;

interface Resource {
  account: string;
  id: string;
  type: 'vm' | 'volume';
  instanceType: string;
  region: string;
}

// 12 accounts; two of them alone use a rare instance type: a cohort below k.
const resources: Resource[] = [];
for (let a = 1; a <= 12; a++) {
  const account = `acct-e2e-${String(a).padStart(3, '0')}`;
  const instanceType = a <= 2 ? 'x9.rare' : 'm5.large';
  resources.push({ account, id: `vm-${account}-1`, type: 'vm', instanceType, region: 'eu-west-1' });
  resources.push({ account, id: `vol-${account}-1`, type: 'volume', instanceType: 'gp3', region: 'eu-west-1' });
}

/** Accounts from this one on have a GPU on their VM: at least k of them, so analytics shows gpu. */
const FIRST_GPU_ACCOUNT = 6;
const hasGpu = (r: Resource) => r.type === 'vm' && Number(r.account.slice(-3)) >= FIRST_GPU_ACCOUNT;

function samplesFor(r: Resource, tsMs: number, i: number): SentSample[] {
  const base = { account_id: r.account, resource_id: r.id, resource_type: r.type, region: r.region, ts: new Date(tsMs).toISOString(), interval_s: 300, attributes: { instance_type: r.instanceType } };
  if (r.type === 'volume') return [{ ...base, id: `${r.id}:storage:${tsMs}`, metric: 'storage', value: 10 * 1024 ** 3 + i * 4096 }];
  return [
    { ...base, id: `${r.id}:cpu:${tsMs}`, metric: 'cpu', value: Number(((i % 7) * 12.345678 + 0.1).toFixed(6)) },
    { ...base, id: `${r.id}:mem:${tsMs}`, metric: 'memory', value: 8 * 1024 ** 3 },
    { ...base, id: `${r.id}:out:${tsMs}`, metric: 'bandwidth_out', value: 1_000_003 * (i + 1) },
    // GPU-seconds in the 300 s window, 6 decimals: float sums of these would drift.
    ...(hasGpu(r) ? [{ ...base, id: `${r.id}:gpu:${tsMs}`, metric: 'gpu', value: Number((150 + (i % 5) * 33.333333 + 0.1).toFixed(6)) }] : []),
  ];
}

const all: SentSample[] = [];
let i = 0;
for (let t = start + 300_000; t <= end; t += 300_000, i++) for (const r of resources) all.push(...samplesFor(r, t, i));

describe('pipeline end to end', () => {
  let p: TestPipeline;
  const accepted: SentSample[] = [];
  const responses: { status: number; body: any }[] = [];

  beforeAll(async () => {
    p = await startTestPipeline('e2e', { K_ANONYMITY: String(K) });
    const third = Math.ceil(all.length / 3);
    const [b1, b2, b3] = [all.slice(0, third), all.slice(third, 2 * third), all.slice(2 * third)];

    // Batch 1: a JSON array.
    responses.push(await p.post(b1));
    accepted.push(...b1);

    // Batch 2: { samples }, with exact re-sends from batch 1, a same-key copy under
    // another id and another value (the first accepted must stand), and invalid items.
    const exactDups = b1.slice(0, 25);
    const sameKeyOtherId = { ...b1[30]!, id: 'another-id-for-the-same-key', value: 999 };
    const invalid = [
      { ...b1[0]!, id: 'neg', value: -5 },
      { ...b1[0]!, id: 'nan', value: 'NaN' },
      { ...b1[0]!, id: 'future', ts: new Date(Date.now() + 3_600_000).toISOString() },
    ];
    const batch2 = [...exactDups, sameKeyOtherId, ...invalid, ...b2];
    responses.push(await p.post({ samples: batch2 }));
    accepted.push(...exactDups, sameKeyOtherId, ...b2);

    // Batch 3: NDJSON with an unreadable line in the middle.
    const lines = b3.map((s) => JSON.stringify(s));
    lines.splice(10, 0, '{"id": "broken json",');
    responses.push(await p.post(lines.join('\n') + '\n', { contentType: 'application/x-ndjson' }));
    accepted.push(...b3);

    await p.waitIdle();
  });

  afterAll(async () => {
    await p?.stop();
  });

  it('answers 202 with per-item rejections and keeps the valid items', () => {
    expect(responses.map((r) => r.status)).toEqual([202, 202, 202]);
    expect(responses[0]!.body).toEqual({ accepted: Math.ceil(all.length / 3), rejected: [], rejected_count: 0, batch_id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const r2 = responses[1]!.body;
    expect(r2.rejected.map((r: { index: number }) => r.index)).toEqual([26, 27, 28]);
    expect(r2.rejected[0].errors).toEqual([{ path: 'value', message: 'value must not be negative' }]);
    expect(r2.rejected[1].errors).toEqual([{ path: 'value', message: 'value must be a number' }]);
    expect(r2.rejected[2].errors).toEqual([{ path: 'ts', message: 'ts must not be more than 5 minutes in the future' }]);
    const r3 = responses[2]!.body;
    expect(r3.rejected).toHaveLength(1);
    expect(r3.rejected[0].index).toBe(10);
    expect(r3.rejected[0].errors[0].message).toMatch(/^line 11 is not valid JSON/);
  });

  it('bills every account exactly what the oracle computes, and says the data is complete', async () => {
    const oracle = expectedTotals(accepted);
    const accounts = [...new Set(resources.map((r) => r.account))];
    for (const account of accounts) {
      const res = await p.get(`/v1/accounts/${account}/usage?from=${new Date(start).toISOString()}&to=${new Date(end).toISOString()}`);
      expect(res.status).toBe(200);
      expect(res.body.complete).toBe(true);
      const got = Object.fromEntries(res.body.rows.map((r: { metric: string; base_total: string }) => [r.metric, r.base_total]));
      const want = Object.fromEntries([...oracle].filter(([k]) => k.startsWith(`${account}|`)).map(([k, v]) => [k.split('|')[1], v]));
      expect(got).toEqual(want);
    }
  });

  it('bills gpu in GPU-hours, exactly, only for the accounts with GPUs', async () => {
    const oracle = expectedTotals(accepted);
    const range = `from=${new Date(start).toISOString()}&to=${new Date(end).toISOString()}`;
    for (const r of resources.filter((x) => x.type === 'vm')) {
      const res = await p.get(`/v1/accounts/${r.account}/usage?${range}`);
      const gpu = res.body.rows.find((x: { metric: string }) => x.metric === 'gpu');
      if (!hasGpu(r)) {
        expect(gpu).toBeUndefined();
        continue;
      }
      const want = oracle.get(`${r.account}|gpu`)!;
      expect(gpu).toMatchObject({ base_total: want, base_unit: 'GPU-second', unit: 'GPU-hour' });
      // GPU-hours = GPU-seconds ÷ 3600, checked in integers: quantity × 3600 is within rounding of the total.
      const micros = decimalToMicros(want);
      const [whole = '0', frac = ''] = String(gpu.quantity).split('.');
      const q12 = BigInt(whole) * 10n ** 12n + BigInt(frac.padEnd(12, '0'));
      expect(q12 * 3600n - micros * 10n ** 6n).toBeLessThanOrEqual(3600n);
      expect(micros * 10n ** 6n - q12 * 3600n).toBeLessThanOrEqual(3600n);
    }
  });

  it('publishes gpu to analytics as an exact fleet total over the accounts with GPUs', async () => {
    const cells = await queryRows<{ total: string; accounts: string }>(
      p.ch!,
      "SELECT toString(sum(total)) AS total, toString(sum(accounts)) AS accounts FROM analytics.fleet_usage_hourly WHERE metric = 'gpu'",
    );
    const oracle = expectedTotals(accepted);
    const want = [...oracle].filter(([k]) => k.endsWith('|gpu')).reduce((n, [, v]) => n + decimalToMicros(v), 0n);
    expect(decimalToMicros(cells[0]!.total)).toBe(want);
    expect(want).toBeGreaterThan(0n);
  });

  it('counts the first accepted copy when a same-key duplicate carries another value', async () => {
    const [stats] = await queryRows<{ conflicts: string }>(p.ch!, 'SELECT sum(conflicts) AS conflicts FROM billing.ingest_stats_hourly FINAL');
    expect(Number(stats!.conflicts)).toBeGreaterThanOrEqual(1);
  });

  it('splits usage by hour, day and resource consistently with the total', async () => {
    const account = resources[4]!.account;
    const range = `from=${new Date(start).toISOString()}&to=${new Date(end).toISOString()}`;
    const total = await p.get(`/v1/accounts/${account}/usage?${range}&granularity=total`);
    const hourly = await p.get(`/v1/accounts/${account}/usage?${range}&granularity=hour&group_by=resource_id,region`);
    const sumHourly = new Map<string, bigint>();
    for (const r of hourly.body.rows) {
      expect(r.region).toBe('eu-west-1');
      sumHourly.set(r.metric, (sumHourly.get(r.metric) ?? 0n) + decimalToMicros(r.base_total));
    }
    expect(total.body.rows).toHaveLength(4); // cpu, memory, bandwidth_out (vm) and storage (volume)
    for (const r of total.body.rows) expect(sumHourly.get(r.metric)).toBe(decimalToMicros(r.base_total));
    expect(new Set(hourly.body.rows.map((r: { period_start: string }) => r.period_start)).size).toBe(3);
  });

  it('keeps account and resource ids out of every analytics table', async () => {
    const columns = await queryRows<{ table: string; name: string }>(
      p.ch!,
      "SELECT table, name FROM system.columns WHERE database = 'analytics' AND type LIKE '%String%'",
    );
    expect(columns.length).toBeGreaterThan(0);
    const identifiers = new Set(resources.flatMap((r) => [r.account, r.id]));
    for (const { table, name } of columns) {
      const values = await queryRows<{ v: string }>(p.ch!, `SELECT DISTINCT toString(\`${name}\`) AS v FROM analytics.\`${table}\``);
      for (const { v } of values) for (const id of identifiers) expect(v.includes(id), `${table}.${name} holds ${id}`).toBe(false);
    }
    const [rows] = await queryRows<{ n: string }>(p.ch!, 'SELECT count() AS n FROM analytics.fleet_usage_hourly');
    expect(Number(rows!.n)).toBeGreaterThan(0);
  });

  it('publishes no cohort of fewer than k accounts: the rare instance type is generalized away', async () => {
    const cells = await queryRows<{ instance_type: string; accounts: string }>(
      p.ch!,
      'SELECT instance_type, accounts FROM analytics.fleet_usage_hourly',
    );
    expect(cells.every((c) => Number(c.accounts) >= K)).toBe(true);
    expect(cells.some((c) => c.instance_type === 'x9.rare')).toBe(false);
    expect(cells.some((c) => c.instance_type === 'm5.large')).toBe(true);
  });
});
