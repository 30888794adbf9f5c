/**
 * The leak scanner: reads every string value of every analytics table (and of any
 * dataset or account export given to it) and checks it against the identifiers present in
 * billing data (account and resource ids, whole or as a token inside a value), against the
 * fingerprints of identifiers erased since (domain/erased-identifiers.ts: billing no longer
 * knows them, the fingerprint list does), and against identifier patterns (e-mail, IP
 * address, host name, ARN, UUID, long random token); and checks every published label
 * value against the billing data of its hour: a value not on the label allow-list must be
 * held by at least k accounts there.
 * Analytics must hold none of them; a hit is a privacy bug. The report says what was read
 * and what it was compared against, so "nothing found" is never mistaken for "nothing read".
 */
import { z } from 'zod';
import { readFileSync, statSync } from 'node:fs';
import type { ErasedFingerprints, ErasedListCounts } from '../domain/erased-identifiers.js';
import { paramRuns, queryRows, stringElementSize, URL_PARAM_BUDGET, type ClickHouseClient } from '../lib/clickhouse.js';
import { LIMITS } from '../schemas/sample.js';
import { DEFAULT_ANALYTICS_LABEL_PATTERN } from '../schemas/config.js';

export interface LeakHit {
  /** `analytics.table.column`, or `file:column`. */
  source: string;
  value: string;
  reason: string;
}

/** One table or file read: how much of it, so a clean result can be judged. */
export interface ScannedSource {
  /** `analytics.<table>` or the file's path. */
  source: string;
  /** Rows of the table, or records of the file (CSV/NDJSON lines, JSON objects, Parquet rows). */
  rows: number;
  /** Bytes of the table on disk (compressed), or of the file. */
  bytes: number;
  columns: number;
  /** Distinct values checked (at most MAX_VALUES_PER_SOURCE a column). */
  values: number;
}

/** What the values were compared against. */
export interface ComparedAgainst {
  /** Distinct account ids and resource ids in billing.usage_hourly, and raw sample rows (whose ids count too). */
  liveAccounts: number;
  liveResources: number;
  rawSampleRows: number;
  /** Fingerprints of erased identifiers (not expired); undefined when the list was not consulted. */
  erased?: ErasedListCounts;
}

export interface ScanReport {
  /** Columns read. */
  sources: number;
  values: number;
  hits: LeakHit[];
  scanned: ScannedSource[];
  /** Columns whose distinct values passed MAX_VALUES_PER_SOURCE: only the first ones were checked. */
  truncatedColumns: string[];
}

export interface CheckContext {
  ch: ClickHouseClient;
  /** The erased list, when the scan consults it. */
  erased?: ErasedFingerprints;
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

/** Values that are, or contain as a token, an erased identifier (by fingerprint). */
async function erasedHits(erased: ErasedFingerprints, values: string[]): Promise<Map<string, { token: string; kind: 'account' | 'identifier' }>> {
  const hits = new Map<string, { token: string; kind: 'account' | 'identifier' }>();
  // In runs, so the token list of 200,000 long values never sits in memory at once.
  for (let i = 0; i < values.length; i += 2000) {
    const run = values.slice(i, i + 2000);
    const tokensOf = run.map((v) => [v, ...new Set(v.split(TOKEN_SEPARATORS))].filter((t) => t !== '' && t.length <= MAX_IDENTIFIER_CHARS));
    const found = await erased.lookup(tokensOf.flat());
    if (found.size === 0) continue;
    run.forEach((v, j) => {
      const token = tokensOf[j]!.find((t) => found.has(t));
      if (token !== undefined) hits.set(v, { token, kind: found.get(token)! });
    });
  }
  return hits;
}

async function checkValues(ctx: CheckContext, source: string, values: string[]): Promise<LeakHit[]> {
  const hits: LeakHit[] = [];
  const live = await identifierHits(ctx.ch, values);
  for (const [value, token] of live) {
    hits.push({ source, value, reason: `holds the billing identifier ${JSON.stringify(token)}` });
  }
  if (ctx.erased) {
    for (const [value, { token, kind }] of await erasedHits(ctx.erased, values)) {
      if (live.has(value)) continue;
      const what = kind === 'account' ? 'the id of an erased account' : 'an identifier an erasure removed (resource id)';
      hits.push({ source, value, reason: `holds ${JSON.stringify(token)}, ${what} (fingerprint match)` });
    }
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
  /** The erased list to compare against as well (the CLI always passes it). */
  erased?: ErasedFingerprints;
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
  const sizes = await queryRows(
    ch,
    z.object({ name: z.string(), rows: z.coerce.number(), bytes: z.coerce.number() }),
    `SELECT name, ifNull(total_rows, 0) AS rows, ifNull(total_bytes, 0) AS bytes FROM system.tables WHERE database = 'analytics' AND engine LIKE '%MergeTree%' ORDER BY name`,
  );
  const ctx: CheckContext = { ch, ...(opts.erased ? { erased: opts.erased } : {}) };
  const report: ScanReport = { sources: 0, values: 0, hits: [], scanned: [], truncatedColumns: [] };
  for (const t of sizes) report.scanned.push({ source: `analytics.${t.name}`, rows: t.rows, bytes: t.bytes, columns: 0, values: 0 });
  for (const { table, name } of columns) {
    const rows = await queryRows(
      ch,
      z.object({ v: z.string() }),
      `SELECT DISTINCT toString(\`${name}\`) AS v FROM analytics.\`${table}\` LIMIT ${MAX_VALUES_PER_SOURCE + 1}`,
    );
    if (rows.length > MAX_VALUES_PER_SOURCE) report.truncatedColumns.push(`analytics.${table}.${name}`);
    const values = rows.slice(0, MAX_VALUES_PER_SOURCE).map((r) => r.v);
    report.sources++;
    report.values += values.length;
    const scanned = report.scanned.find((x) => x.source === `analytics.${table}`);
    if (scanned) (scanned.columns++, (scanned.values += values.length));
    report.hits.push(...(await checkValues(ctx, `analytics.${table}.${name}`, values)));
  }
  report.hits.push(...(await rareLabelHits(ch, opts)));
  return report;
}

/** What billing knows now: the live identifiers a scan compares against. */
export async function liveIdentifierCounts(ch: ClickHouseClient): Promise<Omit<ComparedAgainst, 'erased'>> {
  const [row] = await queryRows(
    ch,
    z.object({ accounts: z.coerce.number(), resources: z.coerce.number(), raw: z.coerce.number() }),
    `SELECT (SELECT uniqExact(account_id) FROM billing.usage_hourly) AS accounts,
            (SELECT uniqExact(resource_id) FROM billing.usage_hourly) AS resources,
            (SELECT count() FROM billing.samples_raw) AS raw`,
  );
  return { liveAccounts: row?.accounts ?? 0, liveResources: row?.resources ?? 0, rawSampleRows: row?.raw ?? 0 };
}

/** Dataset and account exports: CSV (with a header), NDJSON, a JSON document (.json), or Parquet. */
export async function scanFile(ch: ClickHouseClient, path: string, opts: Pick<ScanOptions, 'erased'> = {}): Promise<ScanReport> {
  const read = path.endsWith('.parquet') ? await parquetColumns(path) : textColumns(path);
  const ctx: CheckContext = { ch, ...(opts.erased ? { erased: opts.erased } : {}) };
  const report: ScanReport = { sources: 0, values: 0, hits: [], scanned: [], truncatedColumns: [] };
  const scanned: ScannedSource = { source: path, rows: read.records, bytes: statSync(path).size, columns: read.byColumn.size, values: 0 };
  report.scanned.push(scanned);
  for (const [column, set] of read.byColumn) {
    const values = [...set];
    if (read.truncated.has(column)) report.truncatedColumns.push(`${path}:${column}`);
    report.sources++;
    report.values += values.length;
    scanned.values += values.length;
    report.hits.push(...(await checkValues(ctx, `${path}:${column}`, values)));
  }
  return report;
}

interface ReadColumns {
  byColumn: Map<string, Set<string>>;
  truncated: Set<string>;
  records: number;
}

function addValue(read: ReadColumns, column: string, value: unknown): void {
  if (typeof value !== 'string' || value === '') return;
  let set = read.byColumn.get(column);
  if (!set) read.byColumn.set(column, (set = new Set()));
  if (set.size < MAX_VALUES_PER_SOURCE) set.add(value);
  else if (!set.has(value)) read.truncated.add(column);
}

/**
 * Every string inside a JSON value, by its path (`samples[].resource_id`,
 * `samples[].attributes.zone`): an account export nests its rows, and an identifier three
 * levels down is as much a leak as one at the top. Depth is bounded (JSON.parse already
 * refused anything absurd); object keys are values too (a Map column's keys).
 */
function addJson(read: ReadColumns, column: string, value: unknown, depth = 0): void {
  if (depth > 32) return;
  if (Array.isArray(value)) for (const v of value) addJson(read, `${column}[]`, v, depth + 1);
  else if (value !== null && typeof value === 'object') {
    read.records++;
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const path = column === '' ? k : `${column}.${k}`;
      addValue(read, `${column === '' ? '' : column + '.'}(keys)`, k);
      addJson(read, path, v, depth + 1);
    }
  } else addValue(read, column === '' ? '(value)' : column, value);
}

function textColumns(path: string): ReadColumns {
  const read: ReadColumns = { byColumn: new Map(), truncated: new Set(), records: 0 };
  const text = readFileSync(path, 'utf8');
  if (path.endsWith('.json')) {
    addJson(read, '', JSON.parse(text));
    return read;
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (path.endsWith('.csv')) {
    const header = splitCsvLine(lines[0] ?? '');
    for (const line of lines.slice(1)) {
      read.records++;
      splitCsvLine(line).forEach((v, i) => addValue(read, header[i] ?? `#${i}`, v));
    }
  } else {
    for (const line of lines) {
      const before = read.records;
      addJson(read, '', JSON.parse(line));
      if (read.records === before) read.records++; // a line that is not an object is a record too
    }
  }
  return read;
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

async function parquetColumns(path: string): Promise<ReadColumns> {
  const { parquetReadObjects } = await import('hyparquet');
  const buf = readFileSync(path);
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const read: ReadColumns = { byColumn: new Map(), truncated: new Set(), records: 0 };
  for (const row of await parquetReadObjects({ file })) {
    read.records++;
    for (const [k, v] of Object.entries(row)) addValue(read, k, v);
  }
  return read;
}
