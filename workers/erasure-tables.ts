/**
 * Erasure's table deletions and their counts (step 3 of workers/erasure.ts), split from
 * the orchestration because the mutation handling — issue once, wait bounded, resume on
 * retry, report a failing mutation — is a job of its own and the cluster test drives it
 * directly. Also which billing tables hold an account, in the order they are erased, and
 * the check that none still does (step 4).
 */
import { z } from 'zod';
import { setTimeout as sleep } from 'node:timers/promises';
import { erasureRemoved, type RemovedCounter } from '../domain/erasure-requests.js';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import type { ErasureDeps } from './erasure-deps.js';

/** What the rollup reads: erased first (step 3a). */
export const SOURCE_TABLES = ['billing.samples_raw', 'billing.accounts'] as const;
/** What the rollup writes: erased after the barrier (step 3c). */
export const AGGREGATE_TABLES = ['billing.usage_hourly', 'billing.adjustments_hourly'] as const;
/** Billing tables that hold an account_id: everything erasure must reach. */
export const ACCOUNT_TABLES = [...SOURCE_TABLES, ...AGGREGATE_TABLES] as const;
/** The status counter each table's removed rows are reported under. */
const TABLE_COUNTERS: Record<(typeof ACCOUNT_TABLES)[number], RemovedCounter> = {
  'billing.samples_raw': 'raw_samples',
  'billing.accounts': 'lifecycle',
  'billing.usage_hourly': 'hourly_usage',
  'billing.adjustments_hourly': 'adjustments',
};

/** How long one attempt waits for a mutation before it fails and leaves the wait to the retry. */
export const MUTATION_WAIT_MS = 10 * 60_000;
const MUTATION_POLL_MS = 100;

/** Deletes the account's rows of `table` and adds what went to the status under the table's counter. */
export async function deleteCounted(deps: ErasureDeps, requestId: string, table: (typeof ACCOUNT_TABLES)[number], account: string): Promise<void> {
  const removed = await deleteAccountRows(deps, table, account);
  await erasureRemoved(deps.redis, deps.keys, requestId, { [TABLE_COUNTERS[table]]: removed });
}

/** Rows of the account left in any billing table (step 4). */
export async function remainingRows(ch: ClickHouseClient, account: string): Promise<number> {
  const union = ACCOUNT_TABLES.map((t) => `SELECT count() AS n FROM ${t} WHERE account_id = {account:String}`).join(' UNION ALL ');
  const rows = await queryRows(ch, z.object({ n: z.coerce.number() }), `SELECT sum(n) AS n FROM (${union})`, { account });
  return Number(rows[0]?.n ?? 0);
}

/**
 * The account's rows of `table`, physically deleted: waits for an unfinished erasure
 * mutation of the account if there is one, or issues one if rows remain, then waits for
 * it, at most `mutationWaitMs`. The account is written into the mutation as
 * unhex('<hex>'), which system.mutations shows as written: finding "this account's
 * mutation" needs no escaping rules, and the condition stays a deterministic literal.
 */
export async function deleteAccountRows(deps: Pick<ErasureDeps, 'ch' | 'log' | 'mutationWaitMs'>, table: string, account: string): Promise<number> {
  const { ch } = deps;
  const predicate = `account_id = unhex('${Buffer.from(account, 'utf8').toString('hex').toUpperCase()}')`;
  // Rows this call's own mutation removes (0 when it waits for an earlier attempt's).
  let removed = 0;
  if ((await unfinishedMutations(ch, table, predicate)).length === 0) {
    const [row] = await queryRows(ch, z.object({ n: z.coerce.number() }), `SELECT count() AS n FROM ${table} WHERE ${predicate}`);
    removed = Number(row?.n ?? 0);
    if (removed === 0) return 0;
    // Returns once the mutation is queued: the wait below is ours, bounded, and resumable.
    await ch.command({ query: `ALTER TABLE ${table} DELETE WHERE ${predicate}`, clickhouse_settings: { mutations_sync: '0' } });
  }
  const deadline = Date.now() + (deps.mutationWaitMs ?? MUTATION_WAIT_MS);
  for (;;) {
    const pending = await unfinishedMutations(ch, table, predicate);
    if (pending.length === 0) return removed;
    if (Date.now() > deadline) {
      // A failure reason may be transient (the engine retries a mutation by itself): it is
      // reported only once the wait is over, for an operator to judge (KILL MUTATION).
      const failing = pending.find((m) => m.latest_fail_reason !== '');
      throw new Error(
        failing
          ? `erasure mutation ${failing.mutation_id} on ${table} keeps failing (${failing.latest_fail_reason}); the retry waits for it again`
          : `erasure mutation ${pending[0]!.mutation_id} on ${table} is still running; the retry waits for it, without queuing another`,
      );
    }
    await sleep(MUTATION_POLL_MS);
  }
}

async function unfinishedMutations(ch: ClickHouseClient, table: string, predicate: string) {
  const [database, name] = table.split('.');
  return queryRows(
    ch,
    z.object({ mutation_id: z.string(), latest_fail_reason: z.string() }),
    `SELECT mutation_id, latest_fail_reason FROM system.mutations
     WHERE database = {database:String} AND table = {table:String} AND is_done = 0 AND position(command, {predicate:String}) > 0`,
    { database, table: name, predicate },
  );
}
