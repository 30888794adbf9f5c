/**
 * The leak scanner: reads every string value of every analytics table (and of any
 * dataset export given to it) and checks it against the identifiers present in billing
 * data (account and resource ids, whole or as a token inside a value) and against
 * identifier patterns (e-mail, IP address, host name, ARN, UUID, long random token); and
 * checks every published label value against the billing data of its hour: a value not on
 * the label allow-list must be held by at least k accounts there.
 * Analytics must hold none of them; a hit is a privacy bug.
 */
import { z } from 'zod';
import { readFileSync } from 'node:fs';
import { paramRuns, queryRows, stringElementSize, URL_PARAM_BUDGET, type ClickHouseClient } from '../lib/clickhouse.js';
import { LIMITS } from '../schemas/sample.js';
import { DEFAULT_ANALYTICS_LABEL_PATTERN } from '../schemas/config.js';

export interface LeakHit {
  /** `analytics.table.column`, or `file:column`. */
  source: string;
  value: string;
  reason: string;
}

export interface ScanReport {
  sources: number;
  values: number;
  hits: LeakHit[];
}

const PATTERNS: [string, RegExp][] = [
  ['e-mail address', /[^\s@,;]+@[^\s@,;]+\.[a-z]{2,}/i],
  ['IPv4 address', /\b\d{1,3}(\.\d{1,3}){3}\b/],
  ['IPv6 address', /\b[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,7}\b/i],
  ['host name', /\b[a-z0-9-]+(\.[a-z0-9-]+)*\.(com|net|org|io|co|dev|cloud|internal|local|lan|corp|example)\b/i],
  ['ARN', /\barn:[a-z0-9-]+:/i],
  ['UUID', /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/i],
  ['long random token', /[A-Za-z0-9+/_-]{24,}|[0-9a-f]{16,}/i],
];

const NUMBER_OR_TIME = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$|^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Distinct values kept per column: analytics columns are low-cardinality by design. */
const MAX_VALUES_PER_SOURCE = 200_000;

// Every identifier billing knows, as one set ClickHouse can probe.
const KNOWN_IDENTIFIERS = `
  SELECT account_id AS id FROM billing.usage_hourly UNION DISTINCT
  SELECT resource_id FROM billing.usage_hourly UNION DISTINCT
  SELECT account_id FROM billing.samples_raw UNION DISTINCT
  SELECT resource_id FROM billing.samples_raw UNION DISTINCT
  SELECT id FROM billing.samples_raw`;

/** The longest identifier billing can hold (ingest's limit on resource ids; ids and accounts are shorter). */
const MAX_IDENTIFIER_CHARS = LIMITS.resourceIdLength;
/** The scanner's token rule, the same as splitByRegexp below. */
const TOKEN_SEPARATORS = /[^A-Za-z0-9_.:@/-]+/;

/**
 * Values that are, or contain as a token, a known identifier. The values travel as a
 * query parameter, that is in the URL: in runs of at most URL_PARAM_BUDGET encoded bytes
 * (a server refuses a field over 128 KiB). A value too long for a run of its own is longer
 * than any identifier, so it can only hold one as a token: its tokens of identifier length
 * are sent in its place.
 */
async function identifierHits(ch: ClickHouseClient, values: string[]): Promise<Map<string, string>> {
  const hits = new Map<string, string>();
  const probes: Array<{ probe: string; value: string }> = [];
  for (const value of values) {
    if (stringElementSize(value) <= URL_PARAM_BUDGET / 4) probes.push({ probe: value, value });
    else for (const tok of new Set(value.split(TOKEN_SEPARATORS))) if (tok !== '' && tok.length <= MAX_IDENTIFIER_CHARS) probes.push({ probe: tok, value });
  }
  for (const run of paramRuns(probes, (p) => stringElementSize(p.probe))) {
    const rows = await queryRows(
      ch,
      z.object({ v: z.string(), tok: z.string() }),
      `SELECT v, tok FROM (SELECT arrayJoin({values:Array(String)}) AS v)
       ARRAY JOIN arrayDistinct(arrayPushFront(splitByRegexp('[^A-Za-z0-9_.:@/-]+', v), v)) AS tok
       WHERE tok != '' AND tok IN (${KNOWN_IDENTIFIERS})`,
      { values: [...new Set(run.map((p) => p.probe))] },
    );
    const found = new Map(rows.map((r) => [r.v, r.tok]));
    for (const p of run) {
      const tok = found.get(p.probe);
      if (tok !== undefined && !hits.has(p.value)) hits.set(p.value, tok);
    }
  }
  return hits;
}

async function checkValues(ch: ClickHouseClient, source: string, values: string[]): Promise<LeakHit[]> {
  const hits: LeakHit[] = [];
  for (const [value, token] of await identifierHits(ch, values)) {
    hits.push({ source, value, reason: `holds the billing identifier ${JSON.stringify(token)}` });
  }
  for (const value of values) {
    // Numbers and timestamps are measurements, not identifiers (and look like tokens or IPv6).
    if (NUMBER_OR_TIME.test(value)) continue;
    const pattern = PATTERNS.find(([, re]) => re.test(value));
    if (pattern) hits.push({ source, value, reason: `looks like ${pattern[0]}` });
  }
  return hits;
}

export interface ScanOptions {
  /** ANALYTICS_LABEL_PATTERN and ANALYTICS_LABEL_VALUES: labels published however rare. */
  labelPattern?: string;
  labelValues?: readonly string[];
  /** K_ANONYMITY, for hours whose rollup did not record the k it used (older data). */
  k?: number;
}

/**
 * Published label values that neither the allow-list nor k accounts vouch for: every
 * region, zone and instance type in analytics (outside the placeholders '*', 'other' and
 * 'unknown') must be on the allow-list or be held by at least k accounts in its hour's
 * billing rows. The k is the one the rollup recorded for the hour. An hour whose billing
 * rows no longer match what its rollup saw (an erasure since, or the rows' retention) is
 * not judged: fewer holders there prove nothing.
 */
const RARE_LABELS_SQL = `
WITH candidates AS (
    SELECT DISTINCT hour, l.1 AS dim, l.2 AS value
    FROM analytics.fleet_usage_hourly_versions
    ARRAY JOIN [('region', toString(region)), ('zone', toString(zone)), ('instance_type', toString(instance_type))] AS l
    WHERE value NOT IN ('*', 'other', 'unknown') AND NOT match(value, {labelPattern:String}) AND NOT has({labelValues:Array(String)}, value)
),
billed AS (
    SELECT hour, toString(metric) AS metric, count() AS rows
    FROM billing.usage_hourly FINAL
    WHERE hour IN (SELECT hour FROM candidates)
    GROUP BY hour, metric
),
judged AS (
    SELECT s.hour AS hour, max(if(s.k > 0, s.k, {k:UInt32})) AS judged_k
    FROM analytics.suppression_hourly AS s FINAL
    LEFT JOIN billed AS b ON b.hour = s.hour AND b.metric = s.metric
    WHERE s.hour IN (SELECT hour FROM candidates)
    GROUP BY s.hour
    HAVING min(b.rows = s.resources_total) = 1 AND judged_k > 0
),
holders AS (
    SELECT hour, l.1 AS dim, l.2 AS value, uniqExact(account_id) AS accounts
    FROM billing.usage_hourly FINAL
    ARRAY JOIN [('region', toString(region)), ('zone', zone), ('instance_type', instance_type)] AS l
    WHERE hour IN (SELECT hour FROM judged)
    GROUP BY hour, dim, value
)
SELECT c.dim AS dim, c.value AS value, toString(c.hour) AS hour, h.accounts AS accounts, j.judged_k AS k
FROM candidates AS c
INNER JOIN judged AS j ON j.hour = c.hour
LEFT JOIN holders AS h ON h.hour = c.hour AND h.dim = c.dim AND h.value = c.value
WHERE h.accounts < j.judged_k
ORDER BY c.dim, c.value, c.hour
SETTINGS join_use_nulls = 0`;

async function rareLabelHits(ch: ClickHouseClient, opts: ScanOptions): Promise<LeakHit[]> {
  const rows = await queryRows(ch, z.object({ dim: z.string(), value: z.string(), hour: z.string(), accounts: z.coerce.number(), k: z.coerce.number() }), RARE_LABELS_SQL, {
    labelPattern: opts.labelPattern ?? DEFAULT_ANALYTICS_LABEL_PATTERN,
    labelValues: opts.labelValues ?? [],
    k: opts.k ?? 0,
  });
  return rows.map((r) => ({
    source: `analytics.fleet_usage_hourly_versions.${r.dim}`,
    value: r.value,
    reason: `label held by ${r.accounts} account(s) in hour ${r.hour}, fewer than k = ${r.k}, and not on the label allow-list`,
  }));
}

export async function scanAnalytics(ch: ClickHouseClient, opts: ScanOptions = {}): Promise<ScanReport> {
  const columns = await queryRows(
    ch,
    z.object({ table: z.string(), name: z.string() }),
    `SELECT c.table AS table, c.name AS name FROM system.columns AS c
     INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table
     WHERE c.database = 'analytics' AND t.engine LIKE '%MergeTree%'
       AND (c.type LIKE '%String%' OR c.type LIKE 'Map%' OR c.type LIKE 'Array%')
     ORDER BY c.table, c.name`,
  );
  const report: ScanReport = { sources: 0, values: 0, hits: [] };
  for (const { table, name } of columns) {
    const rows = await queryRows(
      ch,
      z.object({ v: z.string() }),
      `SELECT DISTINCT toString(\`${name}\`) AS v FROM analytics.\`${table}\` LIMIT ${MAX_VALUES_PER_SOURCE}`,
    );
    const values = rows.map((r) => r.v);
    report.sources++;
    report.values += values.length;
    report.hits.push(...(await checkValues(ch, `analytics.${table}.${name}`, values)));
  }
  report.hits.push(...(await rareLabelHits(ch, opts)));
  return report;
}

/** Dataset exports: CSV (with a header), NDJSON, or Parquet. */
export async function scanFile(ch: ClickHouseClient, path: string): Promise<ScanReport> {
  const byColumn = path.endsWith('.parquet') ? await parquetColumns(path) : textColumns(path);
  const report: ScanReport = { sources: 0, values: 0, hits: [] };
  for (const [column, set] of byColumn) {
    const values = [...set];
    report.sources++;
    report.values += values.length;
    report.hits.push(...(await checkValues(ch, `${path}:${column}`, values)));
  }
  return report;
}

function addValue(byColumn: Map<string, Set<string>>, column: string, value: unknown): void {
  if (typeof value !== 'string' || value === '') return;
  let set = byColumn.get(column);
  if (!set) byColumn.set(column, (set = new Set()));
  if (set.size < MAX_VALUES_PER_SOURCE) set.add(value);
}

function textColumns(path: string): Map<string, Set<string>> {
  const byColumn = new Map<string, Set<string>>();
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
  if (path.endsWith('.csv')) {
    const header = splitCsvLine(lines[0] ?? '');
    for (const line of lines.slice(1)) splitCsvLine(line).forEach((v, i) => addValue(byColumn, header[i] ?? `#${i}`, v));
  } else {
    for (const line of lines) for (const [k, v] of Object.entries(JSON.parse(line) as Record<string, unknown>)) addValue(byColumn, k, v);
  }
  return byColumn;
}

function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') (cur += '"'), i++;
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') out.push(cur), (cur = '');
    else cur += c;
  }
  out.push(cur);
  return out;
}

async function parquetColumns(path: string): Promise<Map<string, Set<string>>> {
  const { parquetReadObjects } = await import('hyparquet');
  const buf = readFileSync(path);
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const byColumn = new Map<string, Set<string>>();
  for (const row of await parquetReadObjects({ file })) for (const [k, v] of Object.entries(row)) addValue(byColumn, k, v);
  return byColumn;
}
