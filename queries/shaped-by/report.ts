/**
 * What shaped an analytics answer, read beside it: the k it was published under, how many
 * resources in its hours were generalized or suppressed (the rollup's suppression report,
 * analytics.suppression_hourly_latest), and the history that exists in its range against
 * the history it needs. Named queries, ad-hoc SQL and datasets all carry it, so an empty or
 * thin answer says why instead of looking like an empty fleet.
 *
 * The suppression report is per hour and metric, fleet-wide (it has no region): a query
 * filtered to one region is shown the fleet's figures, and says so. Counts are
 * resource-hours (one resource reporting one metric for one hour), since that is what the
 * report counts; the peak per hour is also given, which reads as "resources".
 *
 * No per-query settings here: this runs on whichever client the caller holds, the
 * pipeline's own among them, and an embedded (chdb) session keeps a statement's settings
 * for every later statement (a `readonly` here once made the pipeline's audit writes fail).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { z } from 'zod';
import { queryRows } from '../../lib/clickhouse.js';
import { API_TIME_MAX_MS, API_TIME_MIN_MS, toIso } from '../../lib/time.js';

export interface ShapeRequest {
  /** The hours the answer reads, epoch seconds [fromS, toS); undefined: all of analytics. */
  window?: { fromS: number; toS: number } | undefined;
  /** The metrics it reads; undefined: all. */
  metrics?: string[] | undefined;
  /** History it needs, in hours, and as words (`14 days`); 0 / undefined: none declared. */
  neededHours?: number;
  neededText?: string | undefined;
  /** Whether the query filters on a region the fleet-wide report cannot: said in `scope`. */
  regionFiltered?: boolean;
  /** K_ANONYMITY as configured now. */
  k: number;
}

export interface MetricPrivacy {
  metric: string;
  hours: number;
  resource_hours: number;
  /** Published with instance type (and perhaps zone) generalized to '*'. */
  generalized: number;
  suppressed: number;
  /** Resources with a label value (region, zone, instance type) withheld as '*'. */
  label_withheld: number;
  peak_resources: number;
  peak_suppressed: number;
}

export interface PrivacyShape {
  k: number;
  /** The k recorded for the hours in range (differs from k after K_ANONYMITY changed). */
  k_applied: number[];
  scope: string;
  /** Hours of the range the suppression report covers. */
  hours_reported: number;
  resource_hours: number;
  published: number;
  generalized: number;
  suppressed: number;
  label_withheld: number;
  /** The most resources (any one metric) in one hour, and the most suppressed. */
  peak_resources_per_hour: number;
  peak_suppressed_per_hour: number;
  /** Resource-hours in the published cells of the range (fleet_usage_hourly). */
  published_resource_hours: number;
  by_metric: MetricPrivacy[];
}

export interface HistoryShape {
  window: { from: string; to: string } | null;
  needs: { text: string; hours: number } | null;
  /** Hours in range with analytics (published or only reported as suppressed). */
  first_hour: string | null;
  last_hour: string | null;
  hours: number;
  /** From the first to the last hour with data, inclusive, in hours. */
  span_hours: number;
  /** All of analytics, whatever the range. */
  analytics_first_hour: string | null;
  analytics_last_hour: string | null;
  sufficient: boolean;
}

export interface AnalyticsShape {
  privacy: PrivacyShape;
  history: HistoryShape;
}

const HOUR_S = 3600;

/** One row: the per-metric report as tuples, and the coverage of the range. */
const n = z.coerce.number();
const shapeRow = z.object({
  // (metric, hours, resource_hours, generalized_any, suppressed, label_withheld, peak_resources, peak_suppressed, ks)
  by_metric: z.array(z.tuple([z.string(), n, n, n, n, n, n, n, z.array(n)])),
  hours: z.coerce.number(),
  first_s: z.coerce.number().nullable(),
  last_s: z.coerce.number().nullable(),
  published_resource_hours: z.coerce.number(),
  analytics_first_s: z.coerce.number().nullable(),
  analytics_last_s: z.coerce.number().nullable(),
});

interface MetricRow {
  metric: string;
  hours: number;
  resource_hours: number;
  generalized_any: number;
  suppressed: number;
  label_withheld: number;
  peak_resources: number;
  peak_suppressed: number;
  ks: number[];
}

const IN_RANGE = `hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
      AND (empty({metrics:Array(String)}) OR has({metrics:Array(String)}, metric))`;

/**
 * Hours the history may fall short and still count as enough: the newest hour or two of a
 * range ending now are still being rolled up, and that is no reason to warn.
 */
export function historySlack(neededHours: number): number {
  return Math.min(6, Math.ceil(neededHours * 0.02));
}

export async function readShape(ch: ClickHouseClient, req: ShapeRequest): Promise<AnalyticsShape> {
  const params = {
    from: req.window?.fromS ?? API_TIME_MIN_MS / 1000,
    to: req.window?.toS ?? API_TIME_MAX_MS / 1000 - HOUR_S,
    metrics: req.metrics ?? [],
  };
  // One statement (each is a round trip into the engine): the report per metric, and the
  // hours with data, published or only reported (a wholly suppressed hour has only a
  // report row). Times as epoch seconds, so no output format decides how they read.
  const [row] = await queryRows(
    ch,
    shapeRow,
    `WITH
         report AS (SELECT * FROM analytics.suppression_hourly_latest WHERE ${IN_RANGE}),
         published AS (SELECT hour, sum(resources) AS resources FROM analytics.fleet_usage_hourly WHERE ${IN_RANGE} GROUP BY hour),
         hours AS (SELECT hour FROM report UNION DISTINCT SELECT hour FROM published)
     SELECT
         (SELECT groupArray((metric, hours, resource_hours, generalized_any, suppressed, label_withheld, peak_resources, peak_suppressed, ks))
          FROM (SELECT metric, count() AS hours, sum(resources_total) AS resource_hours,
                       sum(resources_generalized) AS generalized_any, sum(resources_suppressed) AS suppressed,
                       sum(resources_label_generalized) AS label_withheld,
                       max(resources_total) AS peak_resources, max(resources_suppressed) AS peak_suppressed,
                       arraySort(groupUniqArray(k)) AS ks
                FROM report GROUP BY metric ORDER BY metric)) AS by_metric,
         (SELECT count() FROM hours) AS hours,
         (SELECT if(count() = 0, NULL, toUnixTimestamp(min(hour))) FROM hours) AS first_s,
         (SELECT if(count() = 0, NULL, toUnixTimestamp(max(hour))) FROM hours) AS last_s,
         (SELECT sum(resources) FROM published) AS published_resource_hours,
         (SELECT if(count() = 0, NULL, toUnixTimestamp(min(hour))) FROM
             (SELECT min(hour) AS hour FROM analytics.fleet_usage_hourly_versions HAVING count() > 0
              UNION ALL SELECT min(hour) FROM analytics.suppression_hourly HAVING count() > 0)) AS analytics_first_s,
         (SELECT if(count() = 0, NULL, toUnixTimestamp(max(hour))) FROM
             (SELECT max(hour) AS hour FROM analytics.fleet_usage_hourly_versions HAVING count() > 0
              UNION ALL SELECT max(hour) FROM analytics.suppression_hourly HAVING count() > 0)) AS analytics_last_s`,
    params,
  );
  if (!row) throw new Error('the shape query returned no row'); // scalar subqueries always return one
  const coverage = row;
  const metrics: MetricRow[] = row.by_metric.map(
    ([metric, hours, resource_hours, generalized_any, suppressed, label_withheld, peak_resources, peak_suppressed, ks]) => ({
      metric, hours, resource_hours, generalized_any, suppressed, label_withheld, peak_resources, peak_suppressed, ks,
    }),
  );

  const sum = (f: (m: MetricRow) => number) => metrics.reduce((n, m) => n + f(m), 0);
  const resourceHours = sum((m) => m.resource_hours);
  const suppressed = sum((m) => m.suppressed);
  const generalized = sum((m) => Math.max(0, m.generalized_any - m.suppressed));
  const timeOf = (s: number | null) => (s === null ? null : toIso(s * 1000));
  const span = coverage.first_s === null || coverage.last_s === null ? 0 : (coverage.last_s - coverage.first_s) / HOUR_S + 1;
  const needed = req.neededHours ?? 0;
  const scopeParts = [
    req.window ? `hours ${toIso(req.window.fromS * 1000)} to ${toIso(req.window.toS * 1000)}` : 'every hour in analytics',
    req.metrics ? `metrics ${req.metrics.join(', ')}` : 'all metrics',
    req.regionFiltered ? 'all regions (the suppression report is fleet-wide)' : 'all regions',
  ];
  return {
    privacy: {
      k: req.k,
      k_applied: [...new Set(metrics.flatMap((m) => m.ks))].sort((a, b) => a - b),
      scope: scopeParts.join('; '),
      hours_reported: Math.max(0, ...metrics.map((m) => m.hours)),
      resource_hours: resourceHours,
      published: resourceHours - suppressed,
      generalized,
      suppressed,
      label_withheld: sum((m) => m.label_withheld),
      peak_resources_per_hour: Math.max(0, ...metrics.map((m) => m.peak_resources)),
      peak_suppressed_per_hour: Math.max(0, ...metrics.map((m) => m.peak_suppressed)),
      published_resource_hours: coverage.published_resource_hours,
      by_metric: metrics.map((m) => ({
        metric: m.metric,
        hours: m.hours,
        resource_hours: m.resource_hours,
        generalized: Math.max(0, m.generalized_any - m.suppressed),
        suppressed: m.suppressed,
        label_withheld: m.label_withheld,
        peak_resources: m.peak_resources,
        peak_suppressed: m.peak_suppressed,
      })),
    },
    history: {
      window: req.window ? { from: toIso(req.window.fromS * 1000), to: toIso(req.window.toS * 1000) } : null,
      needs: needed > 0 ? { text: req.neededText ?? `${needed} hours`, hours: needed } : null,
      first_hour: timeOf(coverage.first_s),
      last_hour: timeOf(coverage.last_s),
      hours: coverage.hours,
      span_hours: span,
      analytics_first_hour: timeOf(coverage.analytics_first_s),
      analytics_last_hour: timeOf(coverage.analytics_last_s),
      sufficient: coverage.hours > 0 && span + historySlack(needed) >= needed,
    },
  };
}
