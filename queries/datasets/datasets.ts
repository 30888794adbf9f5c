/**
 * Training datasets for data scientists: every `.sql` file beside this module is one,
 * exported by ClickHouse itself as Parquet or CSV and streamed, each with a data card.
 * A dataset reads anonymized analytics only, and must output the columns the card is
 * computed from: `hour`, `generalized`, `min_cell_accounts`, `split`, and its series
 * columns (header `-- series:`). queries/README.md says how to add one.
 */
import { readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { z } from 'zod';
import { queryRows } from '../../lib/clickhouse.js';
import { neutralizeCsv } from '../export/csv.js';
import { API_TIME_MAX_MS, API_TIME_MIN_MS, toIso } from '../../lib/time.js';
import { describeParam, loadSqlFile, resolveParams, SqlFileError, type ParamsResult, type ResolvedParams, type SqlFile } from '../capacity/sql-file.js';
import { readShape, type AnalyticsShape } from '../shaped-by/report.js';
import { shapeWarnings } from '../shaped-by/warnings.js';

const DIR = new URL('./', import.meta.url);

/** Columns every dataset outputs: the data card is computed from them. */
export const REQUIRED_COLUMNS = ['hour', 'generalized', 'min_cell_accounts', 'split'] as const;

export const DATASET_FORMATS = {
  parquet: { contentType: 'application/vnd.apache.parquet', extension: 'parquet', clickhouse: 'Parquet' },
  csv: { contentType: 'text/csv; charset=utf-8', extension: 'csv', clickhouse: 'CSVWithNames' },
} as const;
export type DatasetFormat = keyof typeof DATASET_FORMATS;

/**
 * Output settings pinned, so the embedded engine and a server (both 26.7, the line compose pins) write the same
 * file: Snappy (read by every Parquet reader), strings as UTF-8 strings; in CSV, times in
 * ISO 8601 with their zone (2026-01-05T00:00:00.000Z: no reader mistakes them for local
 * time) and empty cells for missing values (a lag before the first hour) rather than \N.
 */
const FORMAT_SETTINGS: Record<DatasetFormat, ClickHouseSettings> = {
  parquet: { output_format_parquet_compression_method: 'snappy', output_format_parquet_string_as_string: 1 },
  csv: { format_csv_null_representation: '', date_time_output_format: 'iso' },
};
const QUERY_SETTINGS: ClickHouseSettings = { readonly: '2', max_execution_time: 1800 };

export interface Dataset extends SqlFile {
  schemaVersion: number;
  series: string[];
}

let cache: Dataset[] | undefined;

export function datasets(): Dataset[] {
  cache ??= readdirSync(DIR)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => {
      const file = loadSqlFile(new URL(f, DIR), f.slice(0, -4));
      if (!file.schemaVersion) throw new SqlFileError(`${file.name}: a dataset needs a schema_version`);
      if (!file.series?.length) throw new SqlFileError(`${file.name}: a dataset needs a series: header`);
      for (const c of REQUIRED_COLUMNS) {
        if (!file.columns.some((d) => d.name === c)) throw new SqlFileError(`${file.name}: a dataset must document a ${c} column`);
      }
      if (!file.params.some((p) => p.name === 'from') || !file.params.some((p) => p.name === 'to')) {
        throw new SqlFileError(`${file.name}: a dataset takes from and to`);
      }
      return { ...file, schemaVersion: file.schemaVersion, series: file.series };
    });
  return cache;
}

export function findDataset(name: string): Dataset | undefined {
  return datasets().find((d) => d.name === name);
}

export function describeDataset(ds: Dataset) {
  return {
    name: ds.name,
    title: ds.title,
    description: ds.description,
    schema_version: ds.schemaVersion,
    formats: Object.keys(DATASET_FORMATS),
    params: ds.params.map(describeParam),
    columns: ds.columns,
  };
}

export function resolveDatasetParams(ds: Dataset, raw: Record<string, unknown>): ParamsResult {
  const resolved = resolveParams(ds, raw);
  if ('error' in resolved) return resolved;
  const { from, to } = resolved.bound;
  // DateTime parameters arrive as epoch seconds. The engine will not bind small epoch
  // values ("0", "3600": it reads them as malformed dates, which answered 500), and no
  // analytics predates the floor any API bound may name.
  for (const [name, v] of [['from', from], ['to', to]] as const) {
    if (typeof v === 'number' && (v * 1000 < API_TIME_MIN_MS || v * 1000 >= API_TIME_MAX_MS)) {
      return { error: `${name} must be from ${toIso(API_TIME_MIN_MS)} up to ${toIso(API_TIME_MAX_MS)} (exclusive)` };
    }
  }
  if (typeof from === 'number' && typeof to === 'number' && from >= to) return { error: 'from must be before to' };
  return resolved;
}

/** The dataset as ClickHouse writes it: Parquet or CSV bytes, streamed. */
export async function datasetStream(ch: ClickHouseClient, ds: Dataset, params: ResolvedParams, format: DatasetFormat): Promise<Readable> {
  const result = await ch.exec({
    query: `${ds.body}\nFORMAT ${DATASET_FORMATS[format].clickhouse}`,
    query_params: params.bound,
    clickhouse_settings: { ...QUERY_SETTINGS, ...FORMAT_SETTINGS[format] },
  });
  // CSV text cells (labels such as a region) may be any value shared by enough accounts,
  // so a formula-like one is neutralized on the way out (export/csv.ts); Parquet is typed.
  return format === 'csv' ? Readable.from(neutralizeCsv(result.stream as AsyncIterable<Uint8Array>)) : result.stream;
}

/** `fleet-demand_2026-01-05T00_2026-01-26T00_train.parquet` */
export function datasetFileName(ds: Dataset, params: ResolvedParams, format: DatasetFormat): string {
  const stamp = (v: unknown) => (typeof v === 'string' ? v.slice(0, 13) : 'all');
  const split = params.shown.split && params.shown.split !== 'all' ? `_${String(params.shown.split)}` : '';
  return `${ds.name}_${stamp(params.shown.from)}_${stamp(params.shown.to)}${split}.${DATASET_FORMATS[format].extension}`;
}

// --- data card --------------------------------------------------------------------------

export interface DataCard {
  dataset: string;
  title: string;
  description: string;
  schema_version: number;
  generated_at: string;
  source: string;
  params: ResolvedParams['shown'];
  /** The hours the export covers, [from, to). */
  time_range: { from: string; to: string; first_hour: string | null; last_hour: string | null };
  rows: number;
  series: number;
  series_key: string[];
  split: {
    exported: string;
    validation_from: string | null;
    train: { from: string; to: string; rows: number } | null;
    validation: { from: string; to: string; rows: number } | null;
    rule: string;
  };
  privacy: {
    k: number;
    min_cell_accounts: number | null;
    generalized_rows: number;
    suppression: SuppressionSummary;
  };
  columns: { name: string; type: string; unit: string; description: string }[];
  /** The shape of the export as every analytics answer carries it (shaped-by/report.ts). */
  shaped_by: AnalyticsShape;
  /** It in words: an export emptied by k says so, and how many accounts it takes. */
  warnings: string[];
}

interface SuppressionSummary {
  resource_hours: number;
  generalized: number;
  suppressed: number;
  by_metric: { metric: string; resource_hours: number; generalized: number; suppressed: number }[];
}

const statsSchema = z.object({
  rows: z.coerce.number(),
  series: z.coerce.number(),
  generalized_rows: z.coerce.number(),
  min_cell_accounts: z.coerce.number().nullable(),
  train_rows: z.coerce.number(),
  validation_rows: z.coerce.number(),
  first_hour: z.string().nullable(),
  last_hour: z.string().nullable(),
});

const suppressionSchema = z.object({
  metric: z.string(),
  resource_hours: z.coerce.number(),
  generalized: z.coerce.number(),
  suppressed: z.coerce.number(),
});

/**
 * What a data scientist needs to trust a file: schema with units, time range, the split
 * and its rule, k, and how much privacy cost (generalized cells in the export; resources
 * generalized or suppressed in those hours, from analytics.suppression_hourly).
 */
export async function datasetCard(ch: ClickHouseClient, ds: Dataset, params: ResolvedParams, opts: { k: number }): Promise<DataCard> {
  const seriesKey = ds.series.join(', ');
  const [stats] = await queryRows(
    ch,
    statsSchema,
    `SELECT count() AS rows,
            uniqExact(${seriesKey}) AS series,
            countIf(generalized = 1) AS generalized_rows,
            if(count() = 0, NULL, min(min_cell_accounts)) AS min_cell_accounts,
            countIf(split = 'train') AS train_rows,
            countIf(split = 'validation') AS validation_rows,
            if(count() = 0, NULL, toString(min(hour))) AS first_hour,
            if(count() = 0, NULL, toString(max(hour))) AS last_hour
     FROM (${ds.body})`,
    params.bound,
    QUERY_SETTINGS,
  );
  if (!stats) throw new Error('a dataset card query returned no row'); // an aggregate without GROUP BY always returns one
  const meta = await ch.query({ query: `SELECT * FROM (${ds.body}) LIMIT 0`, query_params: params.bound, format: 'JSON', clickhouse_settings: QUERY_SETTINGS });
  const types = new Map(((await meta.json<unknown>()).meta ?? []).map((m) => [m.name, m.type]));

  const fromS = Number(params.bound.from);
  const toS = Number(params.bound.to);
  const vfS = params.bound.validation_from === null || params.bound.validation_from === undefined ? undefined : Number(params.bound.validation_from);
  const exported = String(params.bound.split ?? 'all');
  const trainRange = vfS === undefined ? { from: fromS, to: toS } : vfS > fromS ? { from: fromS, to: Math.min(toS, vfS) } : undefined;
  const validationRange = vfS !== undefined && vfS < toS ? { from: Math.max(fromS, vfS), to: toS } : undefined;
  // Privacy cost over the hours actually exported.
  const covered = exported === 'train' ? trainRange : exported === 'validation' ? validationRange : { from: fromS, to: toS };
  const shape = await readShape(ch, { window: covered ? { fromS: covered.from, toS: covered.to } : { fromS, toS: fromS }, k: opts.k });

  return {
    dataset: ds.name,
    title: ds.title,
    description: ds.description,
    schema_version: ds.schemaVersion,
    generated_at: new Date().toISOString(),
    source: 'analytics.fleet_usage_hourly: anonymized aggregates, no account or resource identifiers',
    params: params.shown,
    time_range: { from: toIso(fromS * 1000), to: toIso(toS * 1000), first_hour: chTimeToIso(stats.first_hour), last_hour: chTimeToIso(stats.last_hour) },
    rows: stats.rows,
    series: stats.series,
    series_key: ds.series,
    split: {
      exported,
      validation_from: vfS === undefined ? null : toIso(vfS * 1000),
      train: exported === 'validation' || !trainRange ? null : { from: toIso(trainRange.from * 1000), to: toIso(trainRange.to * 1000), rows: stats.train_rows },
      validation: exported === 'train' || !validationRange ? null : { from: toIso(validationRange.from * 1000), to: toIso(validationRange.to * 1000), rows: stats.validation_rows },
      rule: 'time-based: hours before validation_from are train, the rest validation; every feature uses only hours before its row, so no training row depends on data at or after validation_from',
    },
    privacy: {
      k: opts.k,
      min_cell_accounts: stats.min_cell_accounts,
      generalized_rows: stats.generalized_rows,
      suppression: covered ? await suppression(ch, covered.from, covered.to) : { resource_hours: 0, generalized: 0, suppressed: 0, by_metric: [] },
    },
    columns: ds.columns.map((c) => ({ name: c.name, type: types.get(c.name) ?? 'unknown', unit: c.unit, description: c.description })),
    shaped_by: shape,
    warnings: shapeWarnings(shape, { rows: stats.rows }),
  };
}

/** The shape of a dataset export with these parameters, for the headers of its stream. */
export function datasetShape(ch: ClickHouseClient, params: ResolvedParams, opts: { k: number }): Promise<AnalyticsShape> {
  const fromS = Number(params.bound.from);
  const toS = Number(params.bound.to);
  return readShape(ch, { window: { fromS, toS }, k: opts.k });
}

async function suppression(ch: ClickHouseClient, fromS: number, toS: number): Promise<SuppressionSummary> {
  const rows = (
    await queryRows(
      ch,
      suppressionSchema,
      `SELECT metric, sum(resources_total) AS resource_hours, sum(resources_generalized) AS generalized, sum(resources_suppressed) AS suppressed
       FROM analytics.suppression_hourly FINAL
       WHERE hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
       GROUP BY metric
       ORDER BY metric`,
      { from: fromS, to: toS },
    )
  );
  const sum = (k: 'resource_hours' | 'generalized' | 'suppressed') => rows.reduce((n, r) => n + r[k], 0);
  return { resource_hours: sum('resource_hours'), generalized: sum('generalized'), suppressed: sum('suppressed'), by_metric: rows };
}

/** `2026-01-05 00:00:00.000` (UTC) → ISO 8601. */
function chTimeToIso(s: string | null): string | null {
  return s === null ? null : new Date(`${s.replace(' ', 'T')}Z`).toISOString();
}
