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
 *
 * This module reads the analytics tables and assembles the report; the matching rules
 * (leak-scan-match.ts), the label check (leak-scan-labels.ts) and the parsing of export
 * files (leak-scan-files.ts) each live in a module of their own.
 */
import { z } from 'zod';
import { statSync } from 'node:fs';
import type { ErasedFingerprints, ErasedListCounts } from '../domain/erased-identifiers.js';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { checkValues, MAX_VALUES_PER_SOURCE, type CheckContext, type LeakHit } from './leak-scan-match.js';
import { rareLabelHits, type LabelRules } from './leak-scan-labels.js';
import { fileColumns } from './leak-scan-files.js';

export type { LeakHit } from './leak-scan-match.js';

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

export interface ScanOptions extends LabelRules {
  /** The erased list to compare against as well (the CLI always passes it). */
  erased?: ErasedFingerprints;
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
  const read = await fileColumns(path);
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
