/** Responses of the analytics routes (queries/analytics-routes.ts): planners and data scientists. */
import { z } from 'zod';
import { instantSchema, paramDescriptionSchema, shownParamsSchema } from './common.js';

const columnSchema = z.strictObject({ name: z.string(), type: z.string().meta({ description: 'The ClickHouse type', example: 'UInt64' }) });
const count = z.number().int().nonnegative();

const metricPrivacy = { resource_hours: count, generalized: count, suppressed: count, label_withheld: count };

/** What shaped an analytics answer: k and what it cost in the hours read, and the history found (queries/shaped-by/). */
export const analyticsShapeSchema = z
  .strictObject({
    privacy: z.strictObject({
      k: z.number().int().positive(),
      k_applied: z.array(z.number().int()).meta({ description: 'The k recorded for the hours in range (differs from k after K_ANONYMITY changed)' }),
      scope: z.string(),
      hours_reported: count,
      published: count,
      ...metricPrivacy,
      peak_resources_per_hour: count,
      peak_suppressed_per_hour: count,
      published_resource_hours: count,
      by_metric: z.array(z.strictObject({ metric: z.string(), hours: count, ...metricPrivacy, peak_resources: count, peak_suppressed: count })),
    }),
    history: z.strictObject({
      window: z.strictObject({ from: instantSchema, to: instantSchema }).nullable(),
      needs: z.strictObject({ text: z.string(), hours: count }).nullable(),
      first_hour: instantSchema.nullable(),
      last_hour: instantSchema.nullable(),
      hours: count,
      span_hours: count,
      analytics_first_hour: instantSchema.nullable(),
      analytics_last_hour: instantSchema.nullable(),
      sufficient: z.boolean(),
    }),
  })
  .meta({ id: 'AnalyticsShape' });

const warnings = z.array(z.string()).meta({ description: 'The shape in words where it matters (e.g. an answer emptied by k)' });

export const namedQueryListSchema = z
  .strictObject({
    queries: z.array(
      z.strictObject({
        name: z.string().meta({ example: 'capacity/fleet-size' }),
        title: z.string(),
        description: z.string(),
        params: z.array(paramDescriptionSchema),
        needs: z.string().optional().meta({ description: 'The history the answer needs, in words' }),
        metrics: z.array(z.string()).optional().meta({ description: 'The metrics it reads (names, or the parameter naming one)' }),
      }),
    ),
  })
  .meta({ id: 'NamedQueryList' });

export const analyticsTablesSchema = z
  .strictObject({
    database: z.literal('analytics'),
    tables: z.array(
      z.strictObject({
        name: z.string(),
        kind: z.enum(['table', 'view']),
        engine: z.string(),
        description: z.string(),
        columns: z.array(z.strictObject({ name: z.string(), type: z.string(), comment: z.string() })),
      }),
    ),
  })
  .meta({ id: 'AnalyticsTables' });

export const namedQueryResultSchema = z
  .strictObject({
    query: z.string(),
    title: z.string(),
    params: shownParamsSchema.meta({ description: 'The parameters as resolved: defaults applied, times in RFC 3339' }),
    columns: z.array(columnSchema),
    rows: z.array(z.record(z.string(), z.unknown())).meta({ description: '64-bit integers and decimals are strings' }),
    rows_count: count,
    shaped_by: analyticsShapeSchema,
    warnings,
  })
  .meta({ id: 'NamedQueryResult' });

export const sqlResultSchema = z
  .strictObject({
    sql: z.string().meta({ description: 'The statement as ClickHouse formatted it: what actually ran' }),
    columns: z.array(columnSchema),
    rows: z.array(z.record(z.string(), z.unknown())),
    rows_count: count,
    statistics: z.strictObject({ elapsed_s: z.number().nonnegative(), rows_read: count, bytes_read: count }),
    shaped_by: analyticsShapeSchema,
    warnings,
  })
  .meta({ id: 'SqlResult' });

export const datasetListSchema = z
  .strictObject({
    datasets: z.array(
      z.strictObject({
        name: z.string(),
        title: z.string(),
        description: z.string(),
        schema_version: z.number().int().positive(),
        formats: z.array(z.string()),
        params: z.array(paramDescriptionSchema),
        columns: z.array(z.strictObject({ name: z.string(), unit: z.string(), description: z.string() })),
      }),
    ),
  })
  .meta({ id: 'DatasetList' });

const splitRange = z.strictObject({ from: instantSchema, to: instantSchema, rows: count }).nullable();
const suppressionCounts = { resource_hours: count, generalized: count, suppressed: count };

export const dataCardSchema = z
  .strictObject({
    dataset: z.string(),
    title: z.string(),
    description: z.string(),
    schema_version: z.number().int().positive(),
    generated_at: instantSchema,
    source: z.string(),
    params: shownParamsSchema,
    time_range: z.strictObject({ from: instantSchema, to: instantSchema, first_hour: instantSchema.nullable(), last_hour: instantSchema.nullable() }),
    rows: count,
    series: count,
    series_key: z.array(z.string()),
    split: z.strictObject({ exported: z.string(), validation_from: instantSchema.nullable(), train: splitRange, validation: splitRange, rule: z.string() }),
    privacy: z.strictObject({
      k: z.number().int().positive().meta({ description: 'Cohort cells covering fewer than k accounts are suppressed' }),
      min_cell_accounts: count.nullable(),
      generalized_rows: count,
      suppression: z.strictObject({ ...suppressionCounts, by_metric: z.array(z.strictObject({ metric: z.string(), ...suppressionCounts })) }),
    }),
    columns: z.array(z.strictObject({ name: z.string(), type: z.string(), unit: z.string(), description: z.string() })),
    shaped_by: analyticsShapeSchema,
    warnings,
  })
  .meta({ id: 'DataCard' });
