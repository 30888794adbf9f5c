/**
 * The ad-hoc SQL sandbox (POST /v1/analytics/sql, `usage-meter sql`) on a real pipeline:
 * what planners may run, and a precise refusal for everything else — writes, DDL, reads of
 * billing (direct, through table functions, subqueries, views, system tables,
 * dictionaries) and queries over the limits. After all of it billing is intact, nothing
 * was written anywhere, and the pipeline still works.
 */
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { scratchDirs } from './support/temp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer } from '../app/http.js';
import { runSqlCommand } from '../cli/sql.js';
import { KeyRing } from '../lib/auth.js';
import { queryRows } from '../lib/clickhouse.js';
import { createLogger } from '../lib/log.js';
import { registerAnalyticsRoutes } from '../queries/analytics-routes.js';
import type { SandboxLimits } from '../queries/sandbox/sandbox.js';
import type { KeyRole } from '../schemas/config.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
const end = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
const start = end - 3 * HOUR;
const SECRET_ACCOUNT = 'acct-sbx-secret-0001';
const OUTFILE = path.join(os.tmpdir(), `um-sandbox-outfile-${process.pid}.csv`);

const tempDir = scratchDirs();

let p: TestPipeline;
const servers: FastifyInstance[] = [];
let base: string;
let tight: string;
let slow: string;

async function serve(limits: Partial<SandboxLimits>): Promise<string> {
  const app = createHttpServer({ log: createLogger('silent'), bodyLimit: 1 << 20, metrics: new Registry(), readiness: {} });
  const keys = new KeyRing(Object.entries(KEYS).map(([role, secret]) => ({ role: role as KeyRole, id: `${role}-test`, secret })));
  registerAnalyticsRoutes(app, { ch: p.ch!, keys, config: p.config, sandboxLimits: limits });
  await app.listen({ host: '127.0.0.1', port: 0 });
  servers.push(app);
  const addr = app.server.address();
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
}

async function sql(statement: string, opts: { url?: string; params?: Record<string, unknown>; format?: string; key?: string } = {}) {
  const res = await fetch(`${opts.url ?? base}/v1/analytics/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${opts.key ?? KEYS.planner}` },
    body: JSON.stringify({ sql: statement, ...(opts.params ? { params: opts.params } : {}), ...(opts.format ? { format: opts.format } : {}) }),
  });
  const text = await res.text();
  return { status: res.status, text, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : undefined };
}

async function billingFingerprint() {
  return queryRows<{ n: string; total: string }>(p.ch!, 'SELECT count() AS n, toString(sum(base_total)) AS total FROM billing.usage_hourly FINAL');
}

let billingBefore: { n: string; total: string }[];

beforeAll(async () => {
  p = await startTestPipeline('consumers-sandbox', { K_ANONYMITY: '2' });
  // Four accounts with a VM each: billing rows to protect, analytics rows to query.
  const samples = [];
  for (let a = 1; a <= 4; a++) {
    const account = a === 1 ? SECRET_ACCOUNT : `acct-sbx-${String(a).padStart(4, '0')}`;
    for (let t = start + 300_000; t <= end; t += 300_000) {
      samples.push({ id: `${account}:cpu:${t}`, account_id: account, resource_id: `vm-${account}`, resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 12.5 * a, ts: new Date(t).toISOString(), interval_s: 300, attributes: { instance_type: 'm5.large' } });
    }
  }
  expect((await p.post(samples)).status).toBe(202);
  await p.waitIdle();
  // What a careless migration could add to analytics: a view over billing, a view over
  // that view, and a Merge table reading billing.
  await p.ch!.command({ query: 'CREATE VIEW analytics.leaky_view AS SELECT account_id, base_total FROM billing.usage_hourly' });
  await p.ch!.command({ query: 'CREATE VIEW analytics.nested_view AS SELECT * FROM analytics.leaky_view' });
  await p.ch!.command({ query: "CREATE TABLE analytics.billing_merge AS billing.usage_hourly ENGINE = Merge('billing', '^usage_hourly$')" });
  billingBefore = await billingFingerprint();

  base = await serve({ maxRowsToRead: 10_000_000, maxResultRows: 1000, maxExecutionTimeS: 5, maxSqlChars: 4096 });
  tight = await serve({ maxMemoryBytes: 32 * 1024 ** 2, maxExecutionTimeS: 30, maxRowsToRead: 1e12 });
  slow = await serve({ maxExecutionTimeS: 1, maxRowsToRead: 1e12, maxBytesToRead: 1e15 });
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await p?.stop();
});

describe('what the sandbox runs', () => {
  it('answers a SELECT over analytics with columns, rows and statistics', async () => {
    const res = await sql('SELECT region, metric, sum(resources) AS resources FROM analytics.fleet_usage_hourly GROUP BY region, metric ORDER BY region, metric');
    expect(res.status, res.text).toBe(200);
    expect(res.body.columns).toEqual([
      { name: 'region', type: 'LowCardinality(String)' },
      { name: 'metric', type: 'LowCardinality(String)' },
      { name: 'resources', type: 'UInt64' },
    ]);
    expect(res.body.rows).toEqual([{ region: 'eu-west-1', metric: 'cpu', resources: '12' }]); // 4 VMs × 3 hours
    expect(res.body.sql).toContain('FROM analytics.fleet_usage_hourly');
    expect(res.body.statistics.rows_read).toBeGreaterThan(0);
  });

  it('resolves unqualified names in analytics, and allows WITH, subqueries, numbers() and bound parameters', async () => {
    const res = await sql(
      `WITH h AS (SELECT hour, sum(total) AS t FROM fleet_usage_hourly WHERE metric = {metric:String} GROUP BY hour)
       SELECT count() AS hours, (SELECT count() FROM analytics.instance_types) AS shapes, (SELECT sum(number) FROM numbers(10)) AS s
       FROM h WHERE hour IN (SELECT hour FROM analytics.fleet_usage_hourly_versions)`,
      { params: { metric: 'cpu' } },
    );
    expect(res.status, res.text).toBe(200);
    expect(res.body.rows).toEqual([{ hours: '3', shapes: '10', s: '45' }]);
  });

  it('offers the suppression report as it stands: one row per hour and metric however often an hour was recomputed', async () => {
    const latest = await sql('SELECT hour, metric, count() AS n FROM suppression_hourly_latest GROUP BY hour, metric HAVING n > 1');
    expect(latest.status, latest.text).toBe(200);
    expect(latest.body.rows).toEqual([]);
    const keys = await sql('SELECT count() AS n FROM (SELECT DISTINCT hour, metric FROM analytics.suppression_hourly)');
    const rows = await sql('SELECT count() AS n FROM suppression_hourly_latest');
    expect(rows.body.rows).toEqual(keys.body.rows);
    expect(Number(rows.body.rows[0].n)).toBeGreaterThan(0);
    expect(latest.body.columns.map((c: { name: string }) => c.name)).not.toContain('version');
  });

  it('answers CSV when asked, and takes a text/plain body as the SQL', async () => {
    const csv = await sql('SELECT instance_type, vcpus FROM analytics.instance_types FINAL ORDER BY instance_type LIMIT 2', { format: 'csv' });
    expect(csv.status).toBe(200);
    expect(csv.text).toBe('"instance_type","vcpus"\n"c5.2xlarge",8\n"db.r5.4xlarge",16\n');
    const plain = await fetch(`${base}/v1/analytics/sql`, { method: 'POST', headers: { 'content-type': 'text/plain', authorization: `Bearer ${KEYS.planner}` }, body: 'SELECT 1 AS one' });
    expect(await plain.json()).toMatchObject({ rows: [{ one: 1 }] });
  });

  it('is for planner keys only', async () => {
    expect((await sql('SELECT 1', { key: KEYS.billing })).status).toBe(403);
    expect((await sql('SELECT 1', { key: KEYS.datascience })).status).toBe(403);
    expect((await sql('SELECT 1', { key: 'not-a-key-at-all-000000' })).status).toBe(401);
  });
});

/** [SQL, refusal code, a fragment the message must contain]. */
type Case = [string, string, string | RegExp];

const WRITES: Case[] = [
  ['INSERT INTO analytics.instance_types VALUES (\'x9\', 1, 1, 9)', 'sql_write_refused', 'read-only (Insert statement)'],
  ['INSERT INTO billing.usage_hourly SELECT * FROM billing.usage_hourly', 'sql_write_refused', 'Insert'],
  ['ALTER TABLE analytics.fleet_usage_hourly_versions DELETE WHERE 1', 'sql_write_refused', 'Alter'],
  ['ALTER TABLE billing.usage_hourly UPDATE base_total = 0 WHERE 1', 'sql_write_refused', 'Alter'],
  ['DELETE FROM analytics.instance_types WHERE 1', 'sql_write_refused', 'Delete'],
  ['UPDATE analytics.instance_types SET vcpus = 0 WHERE 1', 'sql_write_refused', 'Update'],
  ['TRUNCATE TABLE billing.usage_hourly', 'sql_write_refused', 'Truncate'],
  ['OPTIMIZE TABLE analytics.fleet_usage_hourly_versions FINAL', 'sql_write_refused', 'Optimize'],
];

const DDL: Case[] = [
  ['CREATE TABLE analytics.t (a UInt8) ENGINE = Memory', 'sql_ddl_refused', 'DDL is not allowed'],
  ['CREATE VIEW analytics.v AS SELECT account_id FROM billing.usage_hourly', 'sql_ddl_refused', 'Create'],
  ['DROP TABLE billing.usage_hourly', 'sql_ddl_refused', 'Drop'],
  ['DROP DATABASE analytics', 'sql_ddl_refused', 'Drop'],
  ['RENAME TABLE analytics.instance_types TO analytics.x', 'sql_ddl_refused', 'Rename'],
  ['ALTER TABLE analytics.instance_types ADD COLUMN x UInt8', 'sql_ddl_refused', 'Alter'],
  ['DETACH TABLE billing.usage_hourly', 'sql_ddl_refused', 'Detach'],
  ['GRANT SELECT ON billing.* TO default', 'sql_ddl_refused', 'Grant'],
];

const BILLING_READS: Case[] = [
  ['SELECT * FROM billing.usage_hourly', 'sql_table_refused', 'billing.usage_hourly cannot be read: the billing database is outside the sandbox'],
  ['SELECT account_id FROM `billing`.`samples_raw`', 'sql_table_refused', 'billing.samples_raw'],
  ['SELECT * FROM audit.api_calls', 'sql_table_refused', 'audit database'],
  // subqueries, joins, set operations
  ['SELECT count() FROM analytics.fleet_usage_hourly WHERE region IN (SELECT region FROM billing.usage_hourly)', 'sql_table_refused', 'billing.usage_hourly'],
  ['SELECT (SELECT max(account_id) FROM billing.usage_hourly) AS a', 'sql_table_refused', 'billing.usage_hourly'],
  ['SELECT * FROM (SELECT * FROM billing.accounts)', 'sql_table_refused', 'billing.accounts'],
  ['SELECT f.hour FROM analytics.fleet_usage_hourly AS f JOIN billing.usage_hourly AS u ON f.hour = u.hour', 'sql_table_refused', 'billing.usage_hourly'],
  ['WITH x AS (SELECT account_id FROM billing.usage_hourly) SELECT * FROM x', 'sql_table_refused', 'billing.usage_hourly'],
  ['SELECT region FROM analytics.fleet_usage_hourly UNION ALL SELECT account_id FROM billing.usage_hourly', 'sql_table_refused', 'billing.usage_hourly'],
  ['SELECT 1 WHERE EXISTS (SELECT 1 FROM billing.usage_hourly)', 'sql_table_refused', 'billing.usage_hourly'],
  [`SELECT 1 WHERE '${SECRET_ACCOUNT}' IN billing.usage_hourly`, 'sql_table_refused', 'refers to the billing database'],
  // table functions
  ["SELECT * FROM remote('127.0.0.1', billing.usage_hourly)", 'sql_table_function_refused', 'table function remote() is not allowed'],
  ["SELECT * FROM remoteSecure('127.0.0.1', 'billing', 'usage_hourly')", 'sql_table_function_refused', 'remoteSecure()'],
  ["SELECT * FROM cluster('default', billing.usage_hourly)", 'sql_table_function_refused', 'cluster()'],
  ["SELECT * FROM merge('billing', '.*')", 'sql_table_function_refused', 'merge()'],
  ["SELECT * FROM merge(REGEXP('^bill'), '.*')", 'sql_table_function_refused', 'merge()'],
  ["SELECT * FROM file('/etc/passwd', 'LineAsString')", 'sql_table_function_refused', 'file()'],
  ["SELECT * FROM url('http://127.0.0.1:9/x', CSV, 'a String')", 'sql_table_function_refused', 'url()'],
  ["SELECT * FROM s3('http://127.0.0.1:9/bucket/x.csv')", 'sql_table_function_refused', 's3()'],
  ['SELECT * FROM view(SELECT * FROM billing.usage_hourly)', 'sql_table_function_refused', 'view()'],
  ["SELECT 1 WHERE 'x' IN merge('billing', '.*')", 'sql_table_function_refused', 'merge()'],
  ["SELECT * FROM analytics.fleet_usage_hourly AS f JOIN remote('localhost', system.one) AS o ON 1", 'sql_table_function_refused', 'remote()'],
  // views and other engines inside analytics that read billing
  ['SELECT * FROM analytics.leaky_view', 'sql_table_refused', 'through the view analytics.leaky_view: billing.usage_hourly cannot be read'],
  ['SELECT count() FROM leaky_view', 'sql_table_refused', 'through the view analytics.leaky_view'],
  ['SELECT * FROM analytics.nested_view', 'sql_table_refused', /through the view analytics\.nested_view: through the view analytics\.leaky_view/],
  ['SELECT * FROM analytics.billing_merge', 'sql_table_refused', 'analytics.billing_merge is a Merge table'],
  // system tables and metadata
  ['SELECT * FROM system.tables', 'sql_table_refused', 'the system database is outside the sandbox'],
  ['SELECT query FROM system.query_log', 'sql_table_refused', 'system.query_log'],
  ['SELECT * FROM information_schema.tables', 'sql_table_refused', 'information_schema.tables'],
  ['SELECT * FROM INFORMATION_SCHEMA.COLUMNS', 'sql_table_refused', 'INFORMATION_SCHEMA.COLUMNS'],
  ["SELECT hasColumnInTable('billing', 'usage_hourly', 'account_id')", 'sql_function_refused', 'hasColumnInTable()'],
  // dictionaries and other functions reaching outside
  ["SELECT dictGet('billing.accounts_dict', 'status', 'x')", 'sql_function_refused', 'dictionaries are outside the analytics database'],
  ["SELECT dictGetString('analytics.d', 'x', toUInt64(1))", 'sql_function_refused', 'dictGetString()'],
  ["SELECT dictHas('d', 1)", 'sql_function_refused', 'dictHas()'],
  ["SELECT * FROM dictionary('billing.accounts_dict')", 'sql_table_function_refused', 'dictionary()'],
  ["SELECT joinGet('billing.j', 'v', 1)", 'sql_function_refused', 'joinGet()'],
  ["SELECT file('/etc/passwd')", 'sql_function_refused', 'file()'],
  ['SELECT sleepEachRow(1) FROM numbers(100)', 'sql_function_refused', 'sleepEachRow()'],
];

const OTHER: Case[] = [
  ['SELECT 1 SETTINGS readonly = 0', 'sql_settings_refused', 'SETTINGS clauses are not allowed'],
  ['SELECT * FROM (SELECT 1 SETTINGS max_execution_time = 100000)', 'sql_settings_refused', 'SETTINGS'],
  ['SELECT 1 FORMAT JSON', 'sql_output_refused', 'FORMAT is not allowed'],
  [`SELECT 1 INTO OUTFILE '${OUTFILE}'`, 'sql_output_refused', 'INTO OUTFILE is not allowed'],
  ['SET readonly = 0', 'sql_statement_refused', 'only SELECT queries (and DESCRIBE TABLE analytics.<table>, SHOW TABLES) may run here, not Set'],
  ['USE billing', 'sql_statement_refused', 'Use'],
  // Schema discovery covers analytics only (schema-statements.ts; attacks in analytics-shaped-by.test.ts).
  ['SHOW TABLES FROM billing', 'sql_statement_refused', 'not SHOW TABLES FROM billing'],
  ['DESCRIBE TABLE billing.usage_hourly', 'sql_table_refused', 'billing.usage_hourly cannot be described'],
  ['EXISTS TABLE billing.usage_hourly', 'sql_statement_refused', 'ExistsTable'],
  ['SYSTEM FLUSH LOGS', 'sql_statement_refused', 'only SELECT'],
  ['KILL QUERY WHERE 1', 'sql_statement_refused', 'KillQuery'],
  ['EXPLAIN SELECT * FROM billing.usage_hourly', 'sql_statement_refused', 'Explain'],
  ['SELECT 1; DROP TABLE billing.usage_hourly', 'sql_syntax_error', 'Multi-statements are not allowed'],
  ['SELECT 1 -- fine\n; INSERT INTO billing.usage_hourly SELECT * FROM billing.usage_hourly', 'sql_syntax_error', 'Multi-statements'],
  ['SELEC 1', 'sql_syntax_error', 'Syntax error'],
  ['', 'sql_empty', 'the SQL is empty'],
  ['SELECT {region:String}', 'sql_missing_parameter', 'Substitution `region` is not set'],
];

describe('what the sandbox refuses, and why', () => {
  const check = async ([statement, code, fragment]: Case) => {
    const res = await sql(statement);
    expect(res.body?.error?.code, `${statement}\n→ ${res.text}`).toBe(code);
    if (typeof fragment === 'string') expect(res.body.error.message, statement).toContain(fragment);
    else expect(res.body.error.message, statement).toMatch(fragment);
    expect(res.status).toBe(code.startsWith('sql_syntax') || code === 'sql_empty' || code === 'sql_missing_parameter' ? 400 : 403);
    // A refusal never carries data it protects.
    expect(res.text).not.toContain(SECRET_ACCOUNT.slice(5)); // 'sbx-secret-0001', not the literal in the SQL echo
  };

  it.each(WRITES)('refuses a write: %s', async (...c) => check(c));
  it.each(DDL)('refuses DDL: %s', async (...c) => check(c));
  it.each(BILLING_READS)('refuses a read outside analytics: %s', async (...c) => check(c));
  it.each(OTHER)('refuses settings, output clauses and other statements: %s', async (...c) => check(c));

  it('checks the statement with its parameters bound: an Identifier parameter cannot name billing', async () => {
    for (const [statement, params] of [
      ['SELECT * FROM {t:Identifier}', { t: 'billing.usage_hourly' }],
      ['SELECT account_id FROM {db:Identifier}.usage_hourly', { db: 'billing' }],
    ] as const) {
      const res = await sql(statement, { params });
      expect(res.body.error.code, statement).toBe('sql_table_refused');
      expect(res.body.error.message).toContain('billing.usage_hourly cannot be read');
    }
    const ok = await sql('SELECT count() AS n FROM {t:Identifier}', { params: { t: 'instance_types' } });
    expect(ok.body.rows).toEqual([{ n: '10' }]);
  });
});

describe('limits', () => {
  it('stops a query that reads too many rows', async () => {
    const res = await sql('SELECT count() FROM numbers(100000000)');
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ code: 'sql_limit_exceeded', details: { limit: 'max_rows_to_read', engine_error: 'TOO_MANY_ROWS' } });
  });

  it('stops a query whose result is too large', async () => {
    const res = await sql('SELECT number FROM numbers(5000)');
    expect(res.status).toBe(422);
    expect(res.body.error.details.limit).toBe('max_result_rows / max_result_bytes');
    // What the failed query had started to write does not reach the next one's answer.
    expect((await sql('SELECT 7 AS seven')).body.rows).toEqual([{ seven: 7 }]);
  });

  it('stops a query that runs too long', async () => {
    const res = await sql('SELECT sum(cityHash64(number)) FROM numbers(100000000000)', { url: slow });
    expect(res.status, res.text).toBe(422);
    expect(res.body.error.details.limit).toBe('max_execution_time');
  });

  it('stops a query that needs too much memory', async () => {
    const res = await sql('SELECT length(groupArray(number)) FROM numbers(20000000)', { url: tight });
    expect(res.status, res.text).toBe(422);
    expect(res.body.error.details.limit).toBe('max_memory_usage');
  });

  it('refuses SQL longer than the limit before parsing it', async () => {
    const res = await sql(`SELECT 1 AS x${' '.repeat(5000)}`);
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('sql_too_long');
  });
});

describe('the CLI', () => {
  it('runs SQL through the API and reports a refusal with its code', async () => {
    const out = capture();
    expect(await runSqlCommand(['SELECT vcpus FROM analytics.instance_types FINAL WHERE instance_type = {t:String}', '--param', 't=m5.large', '--format', 'json', '--url', base, '--key', KEYS.planner], out.io), out.err()).toBe(0);
    expect(JSON.parse(out.text())).toEqual([{ vcpus: 2 }]);
    const refused = capture();
    expect(await runSqlCommand(['SELECT * FROM billing.usage_hourly', '--url', base, '--key', KEYS.planner], refused.io)).toBe(1);
    expect(refused.err()).toMatch(/^usage-meter sql: 403 sql_table_refused: billing\.usage_hourly cannot be read/);
  });

  it('runs SQL from a file straight against ClickHouse with the same checks', async () => {
    const dir = tempDir('um-sql-');
    const file = path.join(dir, 'q.sql');
    writeFileSync(file, '-- hours published\nSELECT count() AS hours FROM analytics.fleet_usage_hourly\n');
    const out = capture();
    expect(await runSqlCommand(['--file', file, '--data-dir', p.dataDir], out.io), out.err()).toBe(0);
    expect(out.text()).toMatch(/hours\s*\n\s*-+\s*\n\s*3\s*\n/);
    const refused = capture();
    expect(await runSqlCommand(["SELECT * FROM merge('billing', '.*')", '--data-dir', p.dataDir], refused.io)).toBe(1);
    expect(refused.err()).toContain('sql_table_function_refused');
  });
});

describe('after all of it', () => {
  it('left billing and analytics as they were, wrote no file, and the pipeline still bills', async () => {
    expect(await billingFingerprint()).toEqual(billingBefore);
    expect(existsSync(OUTFILE)).toBe(false);
    const [shapes] = await queryRows<{ n: string }>(p.ch!, 'SELECT count() AS n FROM analytics.instance_types');
    expect(shapes!.n).toBe('10');
    // The pipeline's own session is not read-only: a new sample is still written and billed.
    const t = end - 60_000;
    expect((await p.post([{ id: 'after-sandbox', account_id: 'acct-sbx-0002', resource_id: 'vm-acct-sbx-0002', resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 1, ts: new Date(t).toISOString(), interval_s: 60 }])).status).toBe(202);
    await p.waitIdle();
    const after = await billingFingerprint();
    expect(Number(after[0]!.total)).toBe(Number(billingBefore[0]!.total) + 1);
  });
});

function capture() {
  const chunks: string[] = [];
  const errs: string[] = [];
  const sink = (into: string[]) => ({ write: (s: string | Uint8Array) => (into.push(typeof s === 'string' ? s : Buffer.from(s).toString()), true) }) as unknown as NodeJS.WritableStream;
  return { io: { stdout: sink(chunks), stderr: sink(errs) }, text: () => chunks.join(''), err: () => errs.join('') };
}
