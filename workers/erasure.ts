/**
 * Erasure of an account (privacy policy §8 and §9): every billing row, aggregate,
 * adjustment, queued or dead-lettered job of the account is removed physically; the
 * anonymized analytics are left as they are. Each request is a job on the `erasure`
 * queue (retried like any job) with a status a caller can poll.
 *
 * Order, and why nothing of the account survives:
 *   1. mark the account as being erased: ingest refuses its samples from now on, so no
 *      new row for it can enter the queue;
 *   1b. fingerprint what is about to go (domain/erased-identifiers.ts): the account's
 *      resource ids, one-way, before any row is deleted, so a retried attempt still finds
 *      them; and note the billing periods its rows fall in (a closed period's export
 *      changes: the status records it against the period);
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
 *   5. in one MULTI, put the account's fingerprint on the erased list and unmark it:
 *      ingest then refuses its samples with `account_erased` (never silently re-creating
 *      it) until the privacy team reinstates it or the fingerprint expires. Reinstated, it
 *      is billed from zero: new batches get new deduplication tokens, so no checksum of the
 *      old data can swallow them.
 * Every step's finishing time and every count removed go into the request's status.
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
import {
  ERASING_CHECK_MS,
  erasureDone,
  erasureFailed,
  erasureNoted,
  erasureRemoved,
  erasureStarted,
  erasureStepDone,
  periodTouchedSchema,
  type PeriodTouched,
  type RemovedCounter,
} from '../domain/erasure-requests.js';
import { DEFAULT_FINGERPRINT_MONTHS, ensureFingerprintKey, ERASED_LIMITS, fingerprint, recordErasedIdentifiers, type FingerprintKey } from '../domain/erased-identifiers.js';
import { addMonthsUtc } from '../domain/accounts.js';
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
/** The status counter each table's removed rows are reported under. */
const TABLE_COUNTERS: Record<(typeof ACCOUNT_TABLES)[number], RemovedCounter> = {
  'billing.samples_raw': 'raw_samples',
  'billing.accounts': 'lifecycle',
  'billing.usage_hourly': 'hourly_usage',
  'billing.adjustments_hourly': 'adjustments',
};
/** Billing periods listed in a status at most (an account's usage spans a few years at most). */
const MAX_PERIODS_REPORTED = 240;

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
  /** How long the erased fingerprints are kept (AUDIT_RETENTION_MONTHS; default 24, policy §8). */
  fingerprintMonths?: number;
}

export function createErasureProcessor(deps: ErasureDeps) {
  return async function erase(job: Pick<Job<ErasureJob>, 'data'>): Promise<{ passes: number }> {
    const { requestId, account } = payloadOf(QUEUE_NAMES.erasure, job.data);
    const { redis, keys } = deps;
    await erasureStarted(redis, keys, requestId, account);
    // Made before the wait: by the time the account is listed as erased, every ingest
    // process has read the key and checks the list on each batch.
    const fpKey = await ensureFingerprintKey(redis, keys);
    await sleep(ERASING_CHECK_MS + 500); // every ingest process now refuses the account's samples
    await erasureStepDone(redis, keys, requestId, 'samples_refused');
    let passes = 0;
    try {
      const expiresAtMs = addMonthsUtc(Date.now(), deps.fingerprintMonths ?? DEFAULT_FINGERPRINT_MONTHS);
      await fingerprintIdentifiers(deps, requestId, account, fpKey, expiresAtMs);
      await notePeriods(deps, requestId, account);
      await erasureStepDone(redis, keys, requestId, 'identifiers_fingerprinted');
      do {
        passes++;
        const scrub = await scrubQueue(deps.batchQueue, account);
        // A removed job will never be written: its in-flight mark must not hold back
        // `complete` or the rollup's fold watermark until the reconciler notices.
        for (const batchId of scrub.removed) await release(redis, keys, batchId);
        await waitForActiveJobs(deps.batchQueue, account);
        // After the active jobs: one of them may have quarantined rows of the account.
        const quarantined = await eraseFromQuarantine(redis, keys, account);
        await recordIdentifiers(deps, requestId, fpKey, scrub.resourceIds, expiresAtMs);
        await erasureRemoved(redis, keys, requestId, {
          queued_jobs: scrub.queuedJobs,
          queued_rows: scrub.queuedRows,
          dead_letter_jobs: scrub.deadLetterJobs,
          dead_letter_rows: scrub.deadLetterRows,
          quarantined_rows: quarantined,
        });
        await erasureStepDone(redis, keys, requestId, 'queue_scrubbed');
        // Sources, barrier, aggregates (see the header): the rollup lock is held for an
        // instant, never across a mutation.
        for (const table of SOURCE_TABLES) await deleteCounted(deps, requestId, table, account);
        await erasureStepDone(redis, keys, requestId, 'sources_deleted');
        await underRollupLock(deps, async () => undefined);
        for (const table of AGGREGATE_TABLES) await deleteCounted(deps, requestId, table, account);
        await erasureStepDone(redis, keys, requestId, 'aggregates_deleted');
        deps.log.info({ requestId, pass: passes, jobsScrubbed: scrub.queuedJobs + scrub.deadLetterJobs }, 'erasure pass done');
      } while ((await remainingRows(deps.ch, account)) > 0 && passes < MAX_PASSES);
      if ((await remainingRows(deps.ch, account)) > 0) throw new Error(`rows of the account remain after ${MAX_PASSES} passes`);
      await erasureStepDone(redis, keys, requestId, 'verified');
      await erasureDone(redis, keys, requestId, account, passes, { fingerprint: fingerprint(fpKey, account), expiresAtMs });
      return { passes };
    } catch (err) {
      await erasureFailed(redis, keys, requestId, (err as Error).message);
      throw err;
    }
  };
}

async function deleteCounted(deps: ErasureDeps, requestId: string, table: (typeof ACCOUNT_TABLES)[number], account: string): Promise<void> {
  const removed = await deleteAccountRows(deps, table, account);
  await erasureRemoved(deps.redis, deps.keys, requestId, { [TABLE_COUNTERS[table]]: removed });
}

/** The account's resource ids in billing, fingerprinted before they are deleted (bounded). */
async function fingerprintIdentifiers(deps: ErasureDeps, requestId: string, account: string, key: FingerprintKey, expiresAtMs: number): Promise<void> {
  const union = ACCOUNT_TABLES.filter((t) => t !== 'billing.accounts')
    .map((t) => `SELECT resource_id FROM ${t} WHERE account_id = {account:String}`)
    .join(' UNION DISTINCT ');
  const rows = await queryRows(deps.ch, z.object({ resource_id: z.string() }), `SELECT resource_id FROM (${union}) LIMIT {limit:UInt32}`, {
    account,
    limit: ERASED_LIMITS.identifiersPerErasure + 1,
  });
  await recordIdentifiers(deps, requestId, key, rows.map((r) => r.resource_id), expiresAtMs);
}

async function recordIdentifiers(deps: ErasureDeps, requestId: string, key: FingerprintKey, ids: Iterable<string>, expiresAtMs: number): Promise<void> {
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
async function notePeriods(deps: ErasureDeps, requestId: string, account: string): Promise<void> {
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

async function underRollupLock(deps: ErasureDeps, task: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + ACTIVE_WAIT_MS;
  while (!(await withLock(deps.redis, deps.keys.rollupLock, task))) {
    if (Date.now() > deadline) throw new Error('the rollup held its lock too long; retrying');
    await sleep(50);
  }
}

interface ScrubResult {
  queuedJobs: number;
  queuedRows: number;
  deadLetterJobs: number;
  deadLetterRows: number;
  /** Batches whose job was removed whole (their in-flight marks go). */
  removed: string[];
  /** Resource ids of the rows taken out, for the fingerprint list (bounded by the caller). */
  resourceIds: Set<string>;
}

/** Rewrites every not-active batch job that holds the account's rows; counts jobs and rows by kind. */
async function scrubQueue(queue: Queue<BatchJob>, account: string): Promise<ScrubResult> {
  const out: ScrubResult = { queuedJobs: 0, queuedRows: 0, deadLetterJobs: 0, deadLetterRows: 0, removed: [], resourceIds: new Set() };
  const scrubState = async (states: readonly ('waiting' | 'delayed' | 'prioritized' | 'failed' | 'completed' | 'waiting-children')[], deadLetters: boolean) => {
    for (let start = 0; ; start += 500) {
      const jobs = await queue.getJobs([...states], start, start + 499);
      if (jobs.length === 0) break;
      let removedHere = 0;
      for (const job of jobs) {
        if (!job?.data?.accounts?.includes(account)) continue;
        const { kept, taken } = splitAccount(job.data, account);
        for (const r of taken) if (out.resourceIds.size < ERASED_LIMITS.identifiersPerErasure) out.resourceIds.add(r);
        if (kept) await job.updateData(kept);
        else {
          await job.remove();
          out.removed.push(job.data.batchId);
          removedHere++;
        }
        if (deadLetters) (out.deadLetterJobs++, (out.deadLetterRows += taken.length));
        else (out.queuedJobs++, (out.queuedRows += taken.length));
      }
      // A removed job shifts the pages after it: read this page again.
      if (removedHere > 0) start -= removedHere;
      if (jobs.length < 500) break;
    }
  };
  await scrubState(['waiting', 'delayed', 'prioritized', 'completed', 'waiting-children'], false);
  await scrubState(['failed'], true);
  return out;
}

/** The job without the account's rows, or undefined when nothing else is left. */
export function withoutAccount(data: BatchJob, account: string): BatchJob | undefined {
  return splitAccount(data, account).kept;
}

/** The job without the account's rows (undefined when nothing else is left), and the resource ids of the rows taken. */
function splitAccount(data: BatchJob, account: string): { kept: BatchJob | undefined; taken: string[] } {
  const batch = batchJobSchema.parse(data);
  const all = batch.rows
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => ({ line, row: decodeStoredRow(line, batch.rowFormat) }));
  const kept = all.filter(({ row }) => row.account_id !== account);
  const taken = all.filter(({ row }) => row.account_id === account).map(({ row }) => row.resource_id);
  if (kept.length === 0) return { kept: undefined, taken };
  const lines = kept.map((k) => k.line);
  const hours = new Set(kept.map((k) => k.row.usage_hour));
  return {
    kept: {
      ...batch,
      rows: lines.join('\n') + '\n',
      rowCount: lines.length,
      hours: [...hours].sort((a, b) => a - b),
      accounts: batch.accounts.filter((a) => a !== account),
    },
    taken,
  };
}

async function waitForActiveJobs(queue: Queue<BatchJob>, account: string): Promise<void> {
  const deadline = Date.now() + ACTIVE_WAIT_MS;
  while ((await queue.getJobs(['active'])).some((j) => j?.data?.accounts?.includes(account))) {
    if (Date.now() > deadline) throw new Error('a batch job holding the account stayed active too long; retrying');
    await sleep(100);
  }
}
