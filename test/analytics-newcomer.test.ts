/**
 * A newcomer's first fleet: ten accounts, the default k (K_ANONYMITY = 10), a few hours of
 * simulated samples sent through the whole pipeline. Every analytics cell covers fewer
 * than k accounts, so every resource is suppressed and every answer is empty; each answer
 * must say so in words, with how many accounts it takes, instead of a bare "(no rows)":
 * named queries (JSON, CSV), ad-hoc SQL, the dataset card, and the CLI's footer, with
 * --url and without. The counts are compared with an independent count from the samples
 * the test sent (test/support/k-ladder.ts), never with a number written here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runQueryCommand } from '../cli/query.js';
import { runSqlCommand } from '../cli/sql.js';
import { loadConfig } from '../schemas/config.js';
import { createFleet, generateSamples } from '../sim/index.js';
import { ladder, labelsPublishable, type LadderCount, type SentSample } from './support/k-ladder.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
const HOURS = 3;
const END = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
const START = END - HOURS * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();
/** What a newcomer runs with: the default, not a value chosen for the test. */
const K = loadConfig({}, {}).K_ANONYMITY;

const fleet = createFleet({ accounts: 10, resources: 30, seed: 17 });
const sent: SentSample[] = [];
let p: TestPipeline;
let expected: LadderCount;

beforeAll(async () => {
  p = await startTestPipeline('analytics-newcomer');
  for (const batch of generateSamples(fleet, { start: START, hours: HOURS, stepS: 3600, batchSize: 2000, duplicateRate: 0, invalidRate: 0 })) {
    expect((await p.post(batch.items)).status).toBe(202);
    sent.push(...(batch.items as SentSample[]));
  }
  await p.waitIdle();
  expected = ladder(sent, K, { from: START, to: END });
});

afterAll(async () => {
  await p?.stop();
});

async function get(path: string, key: string = KEYS.planner) {
  const res = await fetch(`${p.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : undefined };
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (into: string[]) => ({ write: (s: string | Uint8Array) => (into.push(typeof s === 'string' ? s : Buffer.from(s).toString()), true) }) as unknown as NodeJS.WritableStream;
  return { io: { stdout: sink(out), stderr: sink(err) }, out: () => out.join(''), err: () => err.join('') };
}

const range = () => ({ from: iso(START), to: iso(END) });
/** The sentence an answer emptied by k must contain, with this fleet's numbers. */
const emptiedByK = () =>
  new RegExp(
    `^0 rows: all ${expected.peakSuppressed} resources in this range \\(${expected.suppressed} resource-hours\\) were suppressed because fewer than k=${K} accounts share each cell; at least ${K} accounts per region × resource type × metric are needed`,
  );

describe('a 10-account fleet under the default k', () => {
  it('is wholly suppressed by the independent count (the premise of this file)', () => {
    expect(labelsPublishable(sent)).toBe(true);
    expect(expected.hours).toBe(HOURS);
    expect(expected.resourceHours).toBeGreaterThan(0);
    // No region × resource type × metric group reaches k accounts: nothing can be published.
    expect(expected.largestCoarseGroup).toBeLessThan(K);
    expect(expected.suppressed).toBe(expected.resourceHours);
  });

  it('a named query answers 0 rows and says why, with the counts and the accounts it takes', async () => {
    const res = await get(`/v1/analytics/queries/fleet-size?${new URLSearchParams({ ...range(), granularity: 'hour' })}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.rows).toEqual([]);
    expect(res.body.shaped_by.privacy).toMatchObject({
      k: K,
      k_applied: [K],
      resource_hours: expected.resourceHours,
      suppressed: expected.suppressed,
      published: 0,
      generalized: 0,
      peak_suppressed_per_hour: expected.peakSuppressed,
      hours_reported: HOURS,
    });
    expect(res.body.warnings[0]).toMatch(emptiedByK());
    expect(res.body.warnings[0]).toContain(`and ${K} per region × zone × resource type × instance type × metric to see it in full`);
    // The same in headers, for clients that read only those.
    expect(res.headers.get('x-analytics-k')).toBe(String(K));
    expect(res.headers.get('x-analytics-suppressed-resources')).toBe(String(expected.suppressed));
    expect(res.headers.get('x-analytics-resource-hours')).toBe(String(expected.resourceHours));
    expect(res.headers.get('warning')).toMatch(/^199 usage-meter "0 rows: all \d+ resources .* region x resource type x metric/);
  });

  it('streams CSV with the reason in its headers', async () => {
    const res = await get(`/v1/analytics/queries/cpu-utilization-daily?${new URLSearchParams({ ...range(), format: 'csv' })}`);
    expect(res.status).toBe(200);
    expect(res.text.trim().split('\n')).toHaveLength(1); // the header row only
    const cpu = ladder(sent.filter((s) => s.metric === 'cpu'), K, { from: START, to: END });
    expect(res.headers.get('x-analytics-suppressed-resources')).toBe(String(cpu.suppressed));
    expect(res.headers.get('warning')).toContain(`were suppressed because fewer than k=${K} accounts share each cell`);
  });

  it('a query that needs two weeks says how much history there is', async () => {
    const res = await get(`/v1/analytics/queries/fastest-growing-cohorts?${new URLSearchParams({ to: iso(END) })}`);
    expect(res.status).toBe(200);
    expect(res.body.shaped_by.history).toMatchObject({ needs: { text: '14 days', hours: 336 }, hours: HOURS, span_hours: HOURS, sufficient: false, first_hour: iso(START), last_hour: iso(END - HOUR) });
    expect(res.body.warnings).toContainEqual(
      `this answer needs 14 days of history (${iso(END - 14 * 24 * HOUR)} to ${iso(END)}); analytics have ${HOURS} hours there (${iso(START)} to ${iso(END - HOUR)}), so it is empty or partial until that much history exists`,
    );
    const storage = await get(`/v1/analytics/queries/storage-days-to-capacity?${new URLSearchParams({ ...range(), capacity_gib: '1000' })}`);
    expect(storage.body.warnings.some((w: string) => w.startsWith('this answer needs 7 days of history'))).toBe(true);
  });

  it('ad-hoc SQL says it in its headers and, once the rows are counted, in its JSON', async () => {
    const res = await fetch(`${p.url}/v1/analytics/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.planner}` },
      body: JSON.stringify({ sql: 'SELECT region, sum(resources) AS resources FROM fleet_usage_hourly GROUP BY region' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-analytics-k')).toBe(String(K));
    expect(res.headers.get('x-analytics-suppressed-resources')).toBe(String(expected.suppressed));
    const body = await res.json();
    expect(body.rows_count).toBe(0);
    expect(body.warnings[0]).toMatch(emptiedByK());
    expect(body.shaped_by.privacy.suppressed).toBe(expected.suppressed);
  });

  it('the dataset card says the export is empty because of k', async () => {
    const res = await get(`/v1/analytics/datasets/fleet-demand/card?${new URLSearchParams(range())}`, KEYS.datascience);
    expect(res.status).toBe(200);
    expect(res.body.rows).toBe(0);
    expect(res.body.shaped_by.privacy.suppressed).toBe(expected.suppressed);
    expect(res.body.warnings[0]).toMatch(emptiedByK());
    // The file itself, streamed, carries the same figures in its headers.
    const file = await get(`/v1/analytics/datasets/fleet-demand?${new URLSearchParams({ ...range(), format: 'csv' })}`, KEYS.datascience);
    expect(file.status).toBe(200);
    expect(file.headers.get('x-analytics-k')).toBe(String(K));
    expect(file.headers.get('x-analytics-suppressed-resources')).toBe(String(expected.suppressed));
    expect(file.headers.get('warning')).toContain(`were suppressed because fewer than k=${K} accounts share each cell`);
  });

  it('the CLI prints the same footer under the table with --url and from the data directory', async () => {
    const args = ['capacity/fleet-size', '--param', `from=${iso(START)}`, '--param', `to=${iso(END)}`];
    const http = capture();
    expect(await runQueryCommand([...args, '--url', p.url, '--key', KEYS.planner], http.io), http.err()).toBe(0);
    expect(http.out()).toContain('(no rows)');
    const lines = http.err().trim().split('\n');
    expect(lines[0]).toBe(`-- k=${K} · ${expected.suppressed} of ${expected.resourceHours} resource-hours suppressed, 0 generalized · history ${HOURS} h with data (${iso(START)} to ${iso(END - HOUR)})`);
    expect(lines[1]).toMatch(/^-- warning: 0 rows: all \d+ resources in this range/);
    expect(lines[1]).toContain(`at least ${K} accounts per region × resource type × metric`);

    const direct = capture();
    expect(await runQueryCommand([...args, '--data-dir', p.dataDir], direct.io), direct.err()).toBe(0);
    expect(direct.err()).toBe(http.err());

    const csv = capture();
    expect(await runQueryCommand([...args, '--format', 'csv', '--url', p.url, '--key', KEYS.planner], csv.io)).toBe(0);
    expect(csv.err()).toContain(`-- k=${K} · ${expected.suppressed} of ${expected.resourceHours} resource-hours suppressed`);
  });

  it('`usage-meter sql` prints the footer too, both ways', async () => {
    const statement = 'SELECT count() AS cells FROM fleet_usage_hourly HAVING cells > 0';
    const http = capture();
    expect(await runSqlCommand([statement, '--url', p.url, '--key', KEYS.planner], http.io), http.err()).toBe(0);
    expect(http.err()).toContain(`-- k=${K} · ${expected.suppressed} of ${expected.resourceHours} resource-hours suppressed`);
    expect(http.err()).toMatch(/-- warning: 0 rows: all \d+ resources/);
    const direct = capture();
    expect(await runSqlCommand([statement, '--data-dir', p.dataDir], direct.io), direct.err()).toBe(0);
    expect(direct.err()).toBe(http.err());
  });
});
