/**
 * Erasure of an account (privacy policy §8 and §9): every billing row, aggregate,
 * adjustment, queued or dead-lettered job of the account is removed physically; the
 * anonymized analytics are left as they are. Each request is a job on the `erasure`
 * queue (retried like any job) with a status a caller can poll.
 *
 * Order, and why nothing of the account survives:
 *   1. mark the account as being erased: ingest refuses its samples from now on, so no
 *      new row for it can enter the queue;
 *   2. scrub the batch queue: rewrite every waiting, delayed, failed or completed job that
 *      holds the account's rows without them, take its rows out of the quarantine, and
 *      wait for active jobs to finish;
 *   3. delete its rows physically (ALTER … DELETE: mutations that rewrite the parts, not
 *      a mask), in an order that keeps the rollup from writing aggregates of them back,
 *      without holding the rollup's lock while the engine rewrites parts:
 *        a. the sources the rollup reads (raw samples, lifecycle rows), waiting until the
 *           mutations are done: from then on no query reads the account's raw rows;
 *        b. a barrier: take the rollup lock and let it go at once. Every round holds it
 *           from its first read to its last write, so a round that read the rows before
 *           (a) finished has written everything it will write;
 *        c. the aggregates the rollup writes (usage, adjustments). Every aggregate of the
 *           account is now in a part that exists when these mutations are issued, so they
 *           reach it; a later round reads no row of the account (a fold or recomputation
 *           writes only keys of the raw rows it read), so it writes none;
 *      Each mutation is issued only if its table still holds rows of the account and no
 *      unfinished one for the same account is there already (a retry after a timed-out
 *      wait waits for the running one instead of queuing another), and is waited for
 *      with a bounded wait (`mutationWaitMs`): past it the attempt fails and the job's
 *      retry resumes the wait. A mutation that keeps failing is reported with its reason;
 *   4. check that no row is left (a job that was already active in step 2 may have
 *      written after step 3 began) and repeat 2–3 if one is;
 *   5. unmark the account. It can be billed again from zero: new batches get new
 *      deduplication tokens, so no checksum of the old data can swallow them.
 *
 * What this rests on: rounds hold the rollup lock for their whole length (a holder that
 * stalls past LOCK_MS without renewing could overlap the barrier; the check in step 4
 * then finds what it wrote, and another pass removes it), and fold and recomputation
 * write aggregate rows only for keys of raw rows they read (rollup-sql.ts,
 * rollup-fold-sql.ts). Analytics are anonymous cohorts and are left as they are.
 */
import { z } from 'zod';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ERASING_CHECK_MS, erasureDone, erasureFailed, erasureStarted } from '../domain/erasure-requests.js';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { release } from '../domain/ledger.js';
import { eraseFromQuarantine } from '../domain/quarantine.js';
import { withLock } from '../lib/locks.js';
import { batchJobSchema, QUEUE_NAMES, type BatchJob, type ErasureJob, type RedisKeys } from '../schemas/queues.js';
import { decodeStoredRow } from '../schemas/raw-row.js';
import { payloadOf } from './queues.js';

/** What the rollup reads: erased first (step 3a). */
export const SOURCE_TABLES = ['billing.samples_raw', 'billing.accounts'] as const;
/** What the rollup writes: erased after the barrier (step 3c). */
export const AGGREGATE_TABLES = ['billing.usage_hourly', 'billing.adjustments_hourly'] as const;
/** Billing tables that hold an account_id: everything erasure must reach. */
export const ACCOUNT_TABLES = [...SOURCE_TABLES, ...AGGREGATE_TABLES] as const;

const ACTIVE_WAIT_MS = 60_000;
const MAX_PASSES = 5;
/** How long one attempt waits for a mutation before it fails and leaves the wait to the retry. */
export const MUTATION_WAIT_MS = 10 * 60_000;
const MUTATION_POLL_MS = 100;

export interface ErasureDeps {
  ch: ClickHouseClient;
  redis: Redis;
  keys: RedisKeys;
  batchQueue: Queue<BatchJob>;
  log: Logger;
  /** Bound of one attempt's wait for a mutation (default MUTATION_WAIT_MS). */
  mutationWaitMs?: number;
}

export function createErasureProcessor(deps: ErasureDeps) {
  return async function erase(job: Pick<Job<ErasureJob>, 'data'>): Promise<{ passes: number }> {
    const { requestId, account } = payloadOf(QUEUE_NAMES.erasure, job.data);
    await erasureStarted(deps.redis, deps.keys, requestId, account);
    await sleep(ERASING_CHECK_MS + 500); // every ingest process now refuses the account's samples
    let passes = 0;
    try {
      do {
        passes++;
        const { scrubbed, removed } = await scrubQueue(deps.batchQueue, account);
        // A removed job will never be written: its in-flight mark must not hold back
        // `complete` or the rollup's fold watermark until the reconciler notices.
        for (const batchId of removed) await release(deps.redis, deps.keys, batchId);
        await waitForActiveJobs(deps.batchQueue, account);
        // After the active jobs: one of them may have quarantined rows of the account.
        const quarantined = await eraseFromQuarantine(deps.redis, deps.keys, account);
        if (quarantined > 0) deps.log.info({ requestId, rows: quarantined }, 'erasure removed quarantined rows');
        // Sources, barrier, aggregates (see the header): the rollup lock is held for an
        // instant, never across a mutation.
        for (const table of SOURCE_TABLES) await deleteAccountRows(deps, table, account);
        await underRollupLock(deps, async () => undefined);
        for (const table of AGGREGATE_TABLES) await deleteAccountRows(deps, table, account);
        deps.log.info({ requestId, pass: passes, jobsScrubbed: scrubbed }, 'erasure pass done');
      } while ((await remainingRows(deps.ch, account)) > 0 && passes < MAX_PASSES);
      if ((await remainingRows(deps.ch, account)) > 0) throw new Error(`rows of the account remain after ${MAX_PASSES} passes`);
      await erasureDone(deps.redis, deps.keys, requestId, account, passes);
      return { passes };
    } catch (err) {
      await erasureFailed(deps.redis, deps.keys, requestId, (err as Error).message);
      throw err;
    }
  };
}

async function remainingRows(ch: ClickHouseClient, account: string): Promise<number> {
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
export async function deleteAccountRows(deps: Pick<ErasureDeps, 'ch' | 'log' | 'mutationWaitMs'>, table: string, account: string): Promise<void> {
  const { ch } = deps;
  const predicate = `account_id = unhex('${Buffer.from(account, 'utf8').toString('hex').toUpperCase()}')`;
  if ((await unfinishedMutations(ch, table, predicate)).length === 0) {
    const [row] = await queryRows(ch, z.object({ n: z.coerce.number() }), `SELECT count() AS n FROM ${table} WHERE ${predicate}`);
    if (Number(row?.n ?? 0) === 0) return;
    // Returns once the mutation is queued: the wait below is ours, bounded, and resumable.
    await ch.command({ query: `ALTER TABLE ${table} DELETE WHERE ${predicate}`, clickhouse_settings: { mutations_sync: '0' } });
  }
  const deadline = Date.now() + (deps.mutationWaitMs ?? MUTATION_WAIT_MS);
  for (;;) {
    const pending = await unfinishedMutations(ch, table, predicate);
    if (pending.length === 0) return;
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

async function underRollupLock(deps: ErasureDeps, task: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + ACTIVE_WAIT_MS;
  while (!(await withLock(deps.redis, deps.keys.rollupLock, task))) {
    if (Date.now() > deadline) throw new Error('the rollup held its lock too long; retrying');
    await sleep(50);
  }
}

/** Rewrites every not-active batch job that holds the account's rows. Returns how many, and the removed ones. */
async function scrubQueue(queue: Queue<BatchJob>, account: string): Promise<{ scrubbed: number; removed: string[] }> {
  let scrubbed = 0;
  const removed: string[] = [];
  const states = ['waiting', 'delayed', 'prioritized', 'failed', 'completed', 'waiting-children'] as const;
  for (let start = 0; ; start += 500) {
    const jobs = await queue.getJobs([...states], start, start + 499);
    if (jobs.length === 0) break;
    for (const job of jobs) {
      if (!job?.data?.accounts?.includes(account)) continue;
      const kept = withoutAccount(job.data, account);
      if (kept) await job.updateData(kept);
      else {
        await job.remove();
        removed.push(job.data.batchId);
      }
      scrubbed++;
    }
    if (jobs.length < 500) break;
  }
  return { scrubbed, removed };
}

/** The job without the account's rows, or undefined when nothing else is left. */
export function withoutAccount(data: BatchJob, account: string): BatchJob | undefined {
  const batch = batchJobSchema.parse(data);
  const kept = batch.rows
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => ({ line, row: decodeStoredRow(line, batch.rowFormat) }))
    .filter(({ row }) => row.account_id !== account);
  if (kept.length === 0) return undefined;
  const lines = kept.map((k) => k.line);
  const hours = new Set(kept.map((k) => k.row.usage_hour));
  return {
    ...batch,
    rows: lines.join('\n') + '\n',
    rowCount: lines.length,
    hours: [...hours].sort((a, b) => a - b),
    accounts: batch.accounts.filter((a) => a !== account),
  };
}

async function waitForActiveJobs(queue: Queue<BatchJob>, account: string): Promise<void> {
  const deadline = Date.now() + ACTIVE_WAIT_MS;
  while ((await queue.getJobs(['active'])).some((j) => j?.data?.accounts?.includes(account))) {
    if (Date.now() > deadline) throw new Error('a batch job holding the account stayed active too long; retrying');
    await sleep(100);
  }
}
