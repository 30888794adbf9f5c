/**
 * What shaped an analytics answer, on a 40-account simulated fleet with k = 5: some cells
 * published, some generalized, some suppressed. The counts every answer carries are
 * compared with an independent count from the samples sent (test/support/k-ladder.ts);
 * then the tables endpoint and the sandbox's DESCRIBE / SHOW TABLES (and what an attacker
 * would try with them), the history header of the SQL files, and RFC 3339 times.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../lib/clickhouse.js';
import { ANALYTICS_TABLE_DESCRIPTIONS } from '../queries/analytics-tables.js';
import { parseSqlFile } from '../queries/capacity/sql-file.js';
import { parseShapeHeaders, headerGetter, shapeHeaders } from '../queries/shaped-by/headers.js';
import { createFleet, generateSamples } from '../sim/index.js';
import { ladder, labelsPublishable, type SentSample } from './support/k-ladder.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

const K = 5;
const HOUR = 3_600_000;
const HOURS = 3;
const END = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
const START = END - HOURS * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();
const isoZ = (ms: number) => iso(ms).replace('.000Z', 'Z');

const fleet = createFleet({ accounts: 40, resources: 120, seed: 23 });
const sent: SentSample[] = [];
let p: TestPipeline;

beforeAll(async () => {
  p = await startTestPipeline('analytics-shaped-by', { K_ANONYMITY: String(K) });
  for (const batch of generateSamples(fleet, { start: START, hours: HOURS, stepS: 3600, batchSize: 2000, duplicateRate: 0, invalidRate: 0 })) {
    expect((await p.post(batch.items)).status).toBe(202);
    sent.push(...(batch.items as SentSample[]));
  }
  await p.waitIdle();
});

afterAll(async () => {
  await p?.stop();
});

async function get(path: string, key: string = KEYS.planner) {
  const res = await fetch(`${p.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : undefined };
}

async function sql(statement: string, format: 'json' | 'csv' = 'json') {
  const res = await fetch(`${p.url}/v1/analytics/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.planner}` },
    body: JSON.stringify({ sql: statement, format }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : undefined };
}

const range = { from: iso(START), to: iso(END) };
const only = (metric: string) => sent.filter((s) => s.metric === metric);

describe('suppressed and generalized counts, against an independent count', () => {
  it('the fleet is partly published, partly generalized, partly suppressed (the premise)', () => {
    expect(labelsPublishable(sent)).toBe(true);
    const all = ladder(sent, K, { from: START, to: END });
    expect(all.suppressed).toBeGreaterThan(0);
    expect(all.suppressed).toBeLessThan(all.resourceHours);
    expect(all.generalized).toBeGreaterThan(0);
  });

  it('fleet-size carries the fleet-wide counts and says what it leaves out', async () => {
    const want = ladder(sent, K, { from: START, to: END });
    const res = await get(`/v1/analytics/queries/fleet-size?${new URLSearchParams({ ...range, granularity: 'hour' })}`);
    expect(res.status).toBe(200);
    expect(res.body.rows.length).toBeGreaterThan(0);
    expect(res.body.shaped_by.privacy).toMatchObject({ k: K, resource_hours: want.resourceHours, suppressed: want.suppressed, generalized: want.generalized, published: want.resourceHours - want.suppressed });
    const share = ((100 * want.suppressed) / want.resourceHours).toFixed(1).replace(/\.0$/, '');
    expect(res.body.warnings).toContainEqual(expect.stringMatching(new RegExp(`^${share}% of the resource-hours in this range \\(${want.suppressed} of ${want.resourceHours}; up to \\d+ resources an hour\\) were suppressed because fewer than k=${K} accounts`)));
    expect(res.body.warnings).toContainEqual(expect.stringContaining(`(${want.generalized}) were published with their instance type (and perhaps zone) generalized to '*'`));
    // Published resources in the answer's cells + suppressed = every resource-hour sent.
    const [published] = await queryRows(p.ch!, 'SELECT toUInt64(sum(resources)) AS n FROM analytics.fleet_usage_hourly', {});
    expect(Number((published as { n: string }).n) + want.suppressed).toBe(want.resourceHours);
  });

  it('cpu-utilization-daily counts the cpu metric only, and in CSV says it in headers', async () => {
    const cpu = ladder(only('cpu'), K, { from: START, to: END });
    const json = await get(`/v1/analytics/queries/cpu-utilization-daily?${new URLSearchParams(range)}`);
    expect(json.body.shaped_by.privacy).toMatchObject({ resource_hours: cpu.resourceHours, suppressed: cpu.suppressed, generalized: cpu.generalized });
    expect(json.body.shaped_by.privacy.by_metric.map((m: { metric: string }) => m.metric)).toEqual(['cpu']);
    const csv = await get(`/v1/analytics/queries/cpu-utilization-daily?${new URLSearchParams({ ...range, format: 'csv' })}`);
    expect(csv.headers.get('x-analytics-resource-hours')).toBe(String(cpu.resourceHours));
    expect(csv.headers.get('x-analytics-suppressed-resources')).toBe(String(cpu.suppressed));
    expect(csv.headers.get('x-analytics-generalized-resources')).toBe(String(cpu.generalized));
    const summary = parseShapeHeaders((n) => csv.headers.get(n))!;
    expect(summary.warnings).toEqual(json.body.warnings.map((w: string) => w.replace(/×/g, 'x')));
  });

  it('a region filter is told the report is fleet-wide', async () => {
    const region = sent[0]!.region;
    const res = await get(`/v1/analytics/queries/fleet-size?${new URLSearchParams({ ...range, region })}`);
    expect(res.body.shaped_by.privacy.scope).toContain('the suppression report is fleet-wide');
    expect(res.body.warnings).toContainEqual(expect.stringContaining('the suppression figures are fleet-wide'));
  });

  it('a projection from hours of history carries a warning naming how far it reaches', async () => {
    const res = await get(`/v1/analytics/queries/storage-days-to-capacity?${new URLSearchParams({ ...range, capacity_gib: '1000000000' })}`);
    expect(res.status).toBe(200);
    const projected = res.body.rows.filter((r: { days_to_capacity: number | null }) => typeof r.days_to_capacity === 'number' && r.days_to_capacity > HOURS / 24);
    expect(res.body.warnings).toContainEqual(expect.stringMatching(/^this answer needs 7 days of history/));
    // Simulated storage grows, so a far capacity is reached only far beyond three hours.
    expect(projected.length).toBeGreaterThan(0);
    expect(res.body.warnings).toContainEqual(expect.stringMatching(new RegExp(`^days_to_capacity projects further than the history it was fitted on \\(${HOURS} hours\\): ${projected[0].region} `)));
    // A capacity already reached (0 days) is no projection.
    const reached = await get(`/v1/analytics/queries/storage-days-to-capacity?${new URLSearchParams({ ...range, capacity_gib: '0' })}`);
    expect(reached.body.rows.every((r: { days_to_capacity: number }) => r.days_to_capacity === 0)).toBe(true);
    expect(reached.body.warnings.some((w: string) => w.startsWith('days_to_capacity projects'))).toBe(false);
  });

  it('headers survive a round trip: what the CLI reads back is what was sent', async () => {
    const res = await get(`/v1/analytics/queries/fleet-size?${new URLSearchParams(range)}`);
    const fromHeaders = parseShapeHeaders((n) => res.headers.get(n))!;
    const local = parseShapeHeaders(headerGetter(shapeHeaders(res.body.shaped_by, res.body.warnings)))!;
    expect(fromHeaders).toEqual(local);
    // A warning with quotes and backslashes is escaped in its header and read back whole.
    const tricky = ['a "quoted" \\ warning, with a comma', 'second'];
    expect(parseShapeHeaders(headerGetter(shapeHeaders(res.body.shaped_by, tricky)))!.warnings).toEqual(tricky);
  });
});

describe('times in RFC 3339 with Z', () => {
  it('named queries, JSON and CSV', async () => {
    const res = await get(`/v1/analytics/queries/fleet-size?${new URLSearchParams({ ...range, granularity: 'hour' })}`);
    expect(res.body.rows[0].period_start).toBe(isoZ(START));
    const csv = await get(`/v1/analytics/queries/fleet-size?${new URLSearchParams({ ...range, granularity: 'hour', format: 'csv' })}`);
    expect(csv.text.split('\n')[1]).toMatch(new RegExp(`^"${isoZ(START)}",`));
  });

  it('the sandbox, JSON and CSV, DateTime and DateTime64', async () => {
    const res = await sql("SELECT min(hour) AS first, toDateTime64(min(hour), 3, 'UTC') AS first64 FROM fleet_usage_hourly");
    expect(res.body.rows).toEqual([{ first: isoZ(START), first64: iso(START) }]);
    const csv = await sql('SELECT min(hour) AS first FROM fleet_usage_hourly', 'csv');
    expect(csv.text).toBe(`"first"\n"${isoZ(START)}"\n`);
  });
});

describe('schema discovery', () => {
  it('GET /v1/analytics/tables lists every analytics table and view with columns and a description, for planners', async () => {
    const res = await get('/v1/analytics/tables');
    expect(res.status).toBe(200);
    const [catalog] = [await queryRows<{ name: string }>(p.ch!, "SELECT name FROM system.tables WHERE database = 'analytics' ORDER BY name", {})];
    expect(res.body.tables.map((t: { name: string }) => t.name)).toEqual(catalog!.map((t) => t.name));
    for (const t of res.body.tables) {
      // A migration that adds an analytics table must describe it (queries/analytics-tables.ts).
      expect(ANALYTICS_TABLE_DESCRIPTIONS[t.name], t.name).toBeDefined();
      expect(t.columns.length, t.name).toBeGreaterThan(0);
    }
    const fleet = res.body.tables.find((t: { name: string }) => t.name === 'fleet_usage_hourly');
    expect(fleet.kind).toBe('view');
    expect(fleet.columns).toContainEqual({ name: 'hour', type: "DateTime('UTC')", comment: '' });
    expect(JSON.stringify(res.body)).not.toMatch(/billing|account_id|resource_id/);
    expect((await get('/v1/analytics/tables', KEYS.billing)).status).toBe(403);
    expect((await get('/v1/analytics/tables', KEYS.datascience)).status).toBe(403);
  });

  it('DESCRIBE TABLE and SHOW TABLES work in the sandbox for analytics', async () => {
    const desc = await sql('DESCRIBE TABLE analytics.fleet_usage_hourly');
    expect(desc.status, desc.text).toBe(200);
    expect(desc.body.rows.map((r: { name: string }) => r.name)).toContain('instance_type');
    expect(desc.body.rows.find((r: { name: string }) => r.name === 'hour').type).toBe("DateTime('UTC')");
    const short = await sql('desc suppression_hourly_latest');
    expect(short.body.rows.map((r: { name: string }) => r.name)).toContain('resources_suppressed');
    const show = await sql('SHOW TABLES');
    const names = show.body.rows.map((r: { name: string }) => r.name);
    expect(names).toEqual(expect.arrayContaining(['fleet_usage_hourly', 'suppression_hourly_latest', 'instance_types']));
    expect((await sql('show tables from analytics')).body.rows).toEqual(show.body.rows);
    expect((await sql('SHOW TABLES', 'csv')).text.split('\n')[0]).toBe('"name"');
  });

  // What an attacker would try through the two new statements: other databases, table
  // functions that fetch, subqueries, clause smuggling, other SHOW forms.
  const attacks: [string, string][] = [
    ['DESCRIBE TABLE billing.usage_hourly', 'sql_table_refused'],
    ['DESC system.tables', 'sql_table_refused'],
    ['DESCRIBE TABLE `billing`.`usage_hourly`', 'sql_table_refused'],
    ['DESCRIBE TABLE usage_hourly', 'sql_table_refused'],
    ['DESCRIBE TABLE information_schema.tables', 'sql_table_refused'],
    ["DESCRIBE TABLE url('http://127.0.0.1:9/x.csv', CSV)", 'sql_statement_refused'],
    ["DESCRIBE TABLE file('/etc/passwd', 'LineAsString')", 'sql_statement_refused'],
    ["DESCRIBE TABLE remote('127.0.0.1', billing.usage_hourly)", 'sql_statement_refused'],
    ["DESCRIBE TABLE merge('billing', '.*')", 'sql_statement_refused'],
    ['DESCRIBE (SELECT account_id FROM billing.usage_hourly)', 'sql_statement_refused'],
    ['DESCRIBE TABLE analytics.fleet_usage_hourly SETTINGS describe_include_subcolumns = 1', 'sql_settings_refused'],
    ['DESCRIBE TABLE analytics.fleet_usage_hourly FORMAT JSON', 'sql_output_refused'],
    ["DESCRIBE TABLE analytics.fleet_usage_hourly INTO OUTFILE '/tmp/x'", 'sql_output_refused'],
    ['SHOW TABLES FROM billing', 'sql_statement_refused'],
    ['SHOW TABLES IN system', 'sql_statement_refused'],
    ['SHOW DATABASES', 'sql_statement_refused'],
    ["SHOW TABLES LIKE '%'", 'sql_statement_refused'],
    ["SHOW TABLES FROM analytics INTO OUTFILE '/tmp/x'", 'sql_statement_refused'],
    ['SHOW TABLES FROM analytics FORMAT TSV', 'sql_statement_refused'],
    ['SHOW CREATE TABLE analytics.fleet_usage_hourly', 'sql_statement_refused'],
    ['SHOW GRANTS', 'sql_statement_refused'],
    ['SHOW PROCESSLIST', 'sql_statement_refused'],
    ['SHOW TEMPORARY TABLES', 'sql_statement_refused'],
    ['SHOW DICTIONARIES', 'sql_statement_refused'],
  ];
  it.each(attacks)('refuses %s', async (statement, code) => {
    const res = await sql(statement);
    expect(res.status, res.text).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body.error.code).toBe(code);
    expect(res.text).not.toMatch(/account_id|acct-/);
  });

  it('a second statement after an allowed one is refused as a whole', async () => {
    const res = await sql('SHOW TABLES FROM analytics; DROP TABLE analytics.instance_types');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('sql_syntax_error');
    expect((await sql('SELECT count() AS n FROM instance_types')).body.rows[0].n).not.toBe('0');
  });
});

describe('the history header of a named SQL file', () => {
  const head = '-- title: t\n-- description: d\n';
  it('is checked against the parameters at load', () => {
    const ok = parseSqlFile(`${head}-- param to: DateTime = now | end\n-- param weeks: UInt32 = 2 | w\n-- needs: weeks+1 weeks before to\n-- metrics: cpu\nSELECT {to:DateTime('UTC')}, {weeks:UInt32}`, 'x');
    expect(ok.needs).toMatchObject({ amount: 'weeks', plus: 1, unit: 'week', before: 'to' });
    expect(() => parseSqlFile(`${head}-- needs: 14 days before to\nSELECT 1`, 'x')).toThrow(/not a DateTime parameter/);
    expect(() => parseSqlFile(`${head}-- needs: 7 days\nSELECT 1`, 'x')).toThrow(/\[from, to\)/);
    expect(() => parseSqlFile(`${head}-- needs: a fortnight\nSELECT 1`, 'x')).toThrow(/needs must look like/);
    expect(() => parseSqlFile(`${head}-- metrics: cpu, teapots\nSELECT 1`, 'x')).toThrow(/teapots/);
  });

  it('is listed with the query', async () => {
    const res = await get('/v1/analytics/queries');
    const q = res.body.queries.find((x: { name: string }) => x.name === 'capacity/fastest-growing-cohorts');
    expect(q).toMatchObject({ needs: '14 days before to', metrics: ['metric'] });
  });
});
