/**
 * The capacity-planning library: every `.sql` file beside this module is a named query
 * (`capacity/<file>`), answered from anonymized analytics only. Adding a query is adding a
 * file (see queries/README.md); its header gives the title, the description and the
 * parameters, which are validated here before any SQL runs.
 */
import { readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { describeParam, loadSqlFile, resolveParams, type ParamsResult, type ResolvedParams, type SqlFile } from './sql-file.js';
import { neededHours, neededText, queryMetrics, queryWindow } from './history-header.js';
import { neutralizeCsv } from '../export/csv.js';
import { readShape, type AnalyticsShape } from '../shaped-by/report.js';
import { projectionWarning, shapeWarnings } from '../shaped-by/warnings.js';

export const LIBRARY = 'capacity';
const DIR = new URL('./', import.meta.url);

/**
 * Bounds for a named query: trusted SQL, but a parameter such as a ten-year range can still
 * make it heavy. Results are small tables, so a large one means a mistake.
 */
const SETTINGS: ClickHouseSettings = {
  readonly: '2',
  max_execution_time: 120,
  max_result_rows: '100000',
  result_overflow_mode: 'throw',
  // Times as RFC 3339 with Z (2026-01-05T00:00:00Z), in JSON and CSV alike: no reader
  // mistakes them for local time. Dates stay YYYY-MM-DD.
  date_time_output_format: 'iso',
};

export interface NamedQuery extends SqlFile {
  /** `capacity/<name>`: how the CLI and the listing name it. */
  id: string;
}

let cache: NamedQuery[] | undefined;

export function capacityQueries(): NamedQuery[] {
  cache ??= readdirSync(DIR)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => {
      const name = f.slice(0, -4);
      return { ...loadSqlFile(new URL(f, DIR), name), id: `${LIBRARY}/${name}` };
    });
  return cache;
}

/** `capacity/fleet-size` or `fleet-size`. */
export function findQuery(name: string): NamedQuery | undefined {
  const short = name.startsWith(`${LIBRARY}/`) ? name.slice(LIBRARY.length + 1) : name;
  return capacityQueries().find((q) => q.name === short);
}

export function describeQuery(q: NamedQuery) {
  return {
    name: q.id,
    title: q.title,
    description: q.description,
    params: q.params.map(describeParam),
    ...(q.needs ? { needs: q.needs.text } : {}),
    ...(q.metrics ? { metrics: q.metrics } : {}),
  };
}

export function resolveQueryParams(q: NamedQuery, raw: Record<string, unknown>): ParamsResult {
  return resolveParams(q, raw);
}

export interface Column {
  name: string;
  type: string;
}

export interface QueryResult {
  query: string;
  title: string;
  params: ResolvedParams['shown'];
  columns: Column[];
  rows: Record<string, unknown>[];
  rows_count: number;
  /** What shaped the answer: k and the suppression report of its hours, and its history. */
  shaped_by: AnalyticsShape;
  /** The shape in words, where it matters: an answer emptied by k says so here. */
  warnings: string[];
}

export interface ShapeOptions {
  /** K_ANONYMITY. */
  k: number;
}

/** The shape of a named query's answer with these parameters, read before or beside it. */
export function namedQueryShape(ch: ClickHouseClient, q: NamedQuery, params: ResolvedParams, opts: ShapeOptions): Promise<AnalyticsShape> {
  const b = params.bound;
  return readShape(ch, {
    window: queryWindow(q, b),
    metrics: queryMetrics(q, b),
    neededHours: neededHours(q.needs, b),
    neededText: q.needs ? neededText(q.needs, b) : undefined,
    regionFiltered: typeof b.region === 'string',
    k: opts.k,
  });
}

/** The warnings of an answer: its shape's, and a projection past its history. */
export function namedQueryWarnings(q: NamedQuery, shape: AnalyticsShape, rows?: readonly Record<string, unknown>[]): string[] {
  const out = shapeWarnings(shape, rows ? { rows: rows.length } : {});
  const projection = q.projects && rows ? projectionWarning(shape, q.projects, rows) : undefined;
  if (projection) out.push(projection);
  return out;
}

/**
 * Runs a named query. 64-bit integers and decimals come back as strings (the client's
 * session settings), so nothing exact passes through a float on the way out.
 */
export async function runNamedQuery(ch: ClickHouseClient, q: NamedQuery, params: ResolvedParams, opts: ShapeOptions): Promise<QueryResult> {
  const rs = await ch.query({ query: q.body, query_params: params.bound, format: 'JSON', clickhouse_settings: SETTINGS });
  const out = await rs.json<Record<string, unknown>>();
  const shape = await namedQueryShape(ch, q, params, opts);
  return {
    query: q.id,
    title: q.title,
    params: params.shown,
    columns: out.meta?.map((m) => ({ name: m.name, type: m.type })) ?? [],
    rows: out.data,
    rows_count: out.data.length,
    shaped_by: shape,
    warnings: namedQueryWarnings(q, shape, out.data),
  };
}

/** The same result as CSV with a header row, streamed as ClickHouse writes it. */
export async function namedQueryCsv(ch: ClickHouseClient, q: NamedQuery, params: ResolvedParams): Promise<Readable> {
  const result = await ch.exec({
    query: `${q.body}\nFORMAT CSVWithNames`,
    query_params: params.bound,
    clickhouse_settings: { ...SETTINGS, format_csv_null_representation: '' },
  });
  // Labels are data a spreadsheet must not run (OWASP CSV injection): see export/csv.ts.
  return Readable.from(neutralizeCsv(result.stream));
}
