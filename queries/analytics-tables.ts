/**
 * GET /v1/analytics/tables: the schema a planner writes ad-hoc SQL against, the analytics
 * database's tables and views with their columns, types and a line on what each holds.
 * Read from the engine's catalogue for the analytics database only (a bound parameter, so
 * no other database can be named); the descriptions live here, one per table, and a test
 * fails when a migration adds an analytics table without one.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { z } from 'zod';
import { queryRows } from '../lib/clickhouse.js';

export const ANALYTICS_TABLE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  fleet_usage_hourly:
    "Fleet usage per hour and cohort (region × zone × resource type × instance type × metric), the current version of each hour: accounts, resources, samples, exact total in base units, distribution over resources; every row covers at least k accounts, '*' where a label was generalized. Read this one.",
  fleet_usage_hourly_versions: 'Every version the rollup wrote of each hour of fleet_usage_hourly (the view keeps the newest): read the view instead.',
  suppression_hourly:
    'What k-anonymity cost per hour and metric: resources in total, generalized (to a coarser cell), zone-generalized, with a label withheld, suppressed, and the k used; versioned (read suppression_hourly_latest).',
  suppression_hourly_latest: 'suppression_hourly as it stands: one row per hour and metric, the newest version.',
  instance_types: "Reference data: each instance type's vCPUs and memory (GiB), so CPU usage reads as utilization; newest version per type wins.",
};

export interface AnalyticsTable {
  name: string;
  /** `table` or `view`. */
  kind: 'table' | 'view';
  engine: string;
  description: string;
  columns: { name: string; type: string; comment: string }[];
}

const tableRow = z.object({ name: z.string(), engine: z.string(), comment: z.string() });
const columnRow = z.object({ table: z.string(), name: z.string(), type: z.string(), comment: z.string() });

export async function listAnalyticsTables(ch: ClickHouseClient): Promise<AnalyticsTable[]> {
  const [tables, columns] = await Promise.all([
    queryRows(ch, tableRow, "SELECT name, engine, comment FROM system.tables WHERE database = {db:String} AND NOT is_temporary ORDER BY name", { db: 'analytics' }),
    queryRows(ch, columnRow, 'SELECT table, name, type, comment FROM system.columns WHERE database = {db:String} ORDER BY table, position', { db: 'analytics' }),
  ]);
  return tables.map((t) => ({
    name: t.name,
    kind: t.engine === 'View' || t.engine === 'MaterializedView' ? 'view' : 'table',
    engine: t.engine,
    description: ANALYTICS_TABLE_DESCRIPTIONS[t.name] ?? (t.comment || 'no description yet'),
    columns: columns.filter((c) => c.table === t.name).map((c) => ({ name: c.name, type: c.type, comment: c.comment })),
  }));
}
