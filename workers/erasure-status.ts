/**
 * Erasure's bookkeeping beyond the counts (step 1b of workers/erasure.ts), split from the
 * orchestration because it records rather than removes: the fingerprints of the
 * identifiers about to go (domain/erased-identifiers.ts) and the billing periods the
 * account's rows fall in, both noted in the request's status.
 */
import { z } from 'zod';
import { erasureNoted, periodTouchedSchema, type PeriodTouched } from '../domain/erasure-requests.js';
import { ERASED_LIMITS, recordErasedIdentifiers, type FingerprintKey } from '../domain/erased-identifiers.js';
import { queryRows } from '../lib/clickhouse.js';
import type { ErasureDeps } from './erasure-deps.js';
import { ACCOUNT_TABLES } from './erasure-tables.js';

/** Billing periods listed in a status at most (an account's usage spans a few years at most). */
const MAX_PERIODS_REPORTED = 240;

/** The account's resource ids in billing, fingerprinted before they are deleted (bounded). */
export async function fingerprintIdentifiers(deps: ErasureDeps, requestId: string, account: string, key: FingerprintKey, expiresAtMs: number): Promise<void> {
  const union = ACCOUNT_TABLES.filter((t) => t !== 'billing.accounts')
    .map((t) => `SELECT resource_id FROM ${t} WHERE account_id = {account:String}`)
    .join(' UNION DISTINCT ');
  const rows = await queryRows(deps.ch, z.object({ resource_id: z.string() }), `SELECT resource_id FROM (${union}) LIMIT {limit:UInt32}`, {
    account,
    limit: ERASED_LIMITS.identifiersPerErasure + 1,
  });
  await recordIdentifiers(deps, requestId, key, rows.map((r) => r.resource_id), expiresAtMs);
}

/** Fingerprints `ids` onto the erased list and notes the counts in the status. */
export async function recordIdentifiers(deps: ErasureDeps, requestId: string, key: FingerprintKey, ids: Iterable<string>, expiresAtMs: number): Promise<void> {
  const { recorded, omitted, dropped } = await recordErasedIdentifiers(deps.redis, deps.keys, key, ids, expiresAtMs);
  if (recorded + omitted + dropped === 0) return;
  // Recording is idempotent (same key, same fingerprint): the status keeps the largest count seen.
  const h = await deps.redis.hmget(deps.keys.erasureRequest(requestId), 'fp:identifiers', 'fp:omitted');
  const fields: Record<string, string> = {
    'fp:identifiers': String(Math.max(Number(h[0] ?? 0), recorded)),
    'fp:omitted': String(Math.max(Number(h[1] ?? 0), omitted)),
  };
  await erasureNoted(deps.redis, deps.keys, requestId, fields);
  if (dropped > 0) await deps.redis.hincrby(deps.keys.erasureRequest(requestId), 'fp:dropped', dropped);
}

/**
 * The billing periods the account's rows fall in, with each period's state, noted before
 * the rows go (kept from the first attempt that saw them): erasing from a closed period
 * changes its export, and this is where that is recorded.
 */
export async function notePeriods(deps: ErasureDeps, requestId: string, account: string): Promise<void> {
  const rows = await queryRows(
    deps.ch,
    periodTouchedSchema,
    `WITH touched AS (
       SELECT toStartOfMonth(hour) AS p, count() AS u, 0 AS a FROM billing.usage_hourly WHERE account_id = {account:String} GROUP BY p
       UNION ALL
       SELECT billed_period AS p, 0 AS u, count() AS a FROM billing.adjustments_hourly WHERE account_id = {account:String} GROUP BY p
     ),
     states AS (SELECT period, toString(status) AS status FROM billing.periods FINAL)
     SELECT formatDateTime(t.p, '%Y-%m') AS period, if(s.status = '', 'open', s.status) AS status, sum(t.u) AS usage_rows, sum(t.a) AS adjustment_rows
     FROM touched AS t LEFT JOIN states AS s ON s.period = t.p
     GROUP BY t.p, s.status ORDER BY t.p LIMIT {limit:UInt32}
     SETTINGS join_use_nulls = 0`,
    { account, limit: MAX_PERIODS_REPORTED },
  );
  if (rows.length === 0) return;
  await deps.redis.hsetnx(deps.keys.erasureRequest(requestId), 'periods', JSON.stringify(rows satisfies PeriodTouched[]));
}
