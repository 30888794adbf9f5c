/**
 * The leak scanner: reads every string value of every analytics table (and of any
 * dataset export given to it) and checks it against the identifiers present in billing
 * data (account and resource ids, whole or as a token inside a value) and against
 * identifier patterns (e-mail, IP address, host name, ARN, UUID, long random token).
 * Analytics must hold none of them; a hit is a privacy bug.
 */
import { readFileSync } from 'node:fs';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';

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

/** Values that are, or contain as a token, a known identifier. */
async function identifierHits(ch: ClickHouseClient, values: string[]): Promise<Map<string, string>> {
  const hits = new Map<string, string>();
  for (let i = 0; i < values.length; i += 10_000) {
    const rows = await queryRows<{ v: string; tok: string }>(
      ch,
      `SELECT v, tok FROM (SELECT arrayJoin({values:Array(String)}) AS v)
       ARRAY JOIN arrayDistinct(arrayPushFront(splitByRegexp('[^A-Za-z0-9_.:@/-]+', v), v)) AS tok
       WHERE tok != '' AND tok IN (${KNOWN_IDENTIFIERS})`,
      { values: values.slice(i, i + 10_000) },
    );
    for (const r of rows) hits.set(r.v, r.tok);
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

export async function scanAnalytics(ch: ClickHouseClient): Promise<ScanReport> {
  const columns = await queryRows<{ table: string; name: string }>(
    ch,
    `SELECT c.table AS table, c.name AS name FROM system.columns AS c
     INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table
     WHERE c.database = 'analytics' AND t.engine LIKE '%MergeTree%'
       AND (c.type LIKE '%String%' OR c.type LIKE 'Map%' OR c.type LIKE 'Array%')
     ORDER BY c.table, c.name`,
  );
  const report: ScanReport = { sources: 0, values: 0, hits: [] };
  for (const { table, name } of columns) {
    const rows = await queryRows<{ v: string }>(
      ch,
      `SELECT DISTINCT toString(\`${name}\`) AS v FROM analytics.\`${table}\` LIMIT ${MAX_VALUES_PER_SOURCE}`,
    );
    const values = rows.map((r) => r.v);
    report.sources++;
    report.values += values.length;
    report.hits.push(...(await checkValues(ch, `analytics.${table}.${name}`, values)));
  }
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
