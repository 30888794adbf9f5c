/**
 * The product's rollup of one hour, called the way the scheduler calls it, with the
 * product's default settings. Kept in one place because its context follows the product
 * (billing periods, k-anonymity, analytics allow-list): the typecheck flags any drift.
 */
import type { ClickHouseClient } from '../../lib/clickhouse.js';
import { loadPeriodStates } from '../../domain/periods.js';
import type { Config } from '../../schemas/config.js';
import { rollupHour, type RollupContext } from '../../workers/rollup.js';

export async function rollupContext(ch: ClickHouseClient, config: Config): Promise<RollupContext> {
  return { k: config.K_ANONYMITY, analyticsAttributes: config.ANALYTICS_ATTRIBUTES, periods: await loadPeriodStates(ch) };
}

export async function rollupOneHour(ch: ClickHouseClient, hourS: number, version: number, ctx: RollupContext): Promise<void> {
  await rollupHour(ch, hourS, version, ctx);
}
