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
 *
 * This module runs the steps in that order; the queue scrub (erasure-queue-scrub.ts), the
 * table deletions and their counts (erasure-tables.ts) and the fingerprint and period
 * bookkeeping (erasure-status.ts) each live in a module of their own.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Job } from 'bullmq';
import { ERASING_CHECK_MS, erasureDone, erasureFailed, erasureRemoved, erasureStarted, erasureStepDone } from '../domain/erasure-requests.js';
import { DEFAULT_FINGERPRINT_MONTHS, ensureFingerprintKey, fingerprint } from '../domain/erased-identifiers.js';
import { addMonthsUtc } from '../domain/accounts.js';
import { release } from '../domain/ledger.js';
import { eraseFromQuarantine } from '../domain/quarantine.js';
import { withLock } from '../lib/locks.js';
import { QUEUE_NAMES, type ErasureJob } from '../schemas/queues.js';
import { payloadOf } from './queues.js';
import { ACTIVE_WAIT_MS, scrubQueue, waitForActiveJobs } from './erasure-queue-scrub.js';
import { AGGREGATE_TABLES, deleteCounted, remainingRows, SOURCE_TABLES } from './erasure-tables.js';
import { fingerprintIdentifiers, notePeriods, recordIdentifiers } from './erasure-status.js';
import type { ErasureDeps } from './erasure-deps.js';

// The API other modules and tests use, unchanged by the split.
export { ACCOUNT_TABLES, AGGREGATE_TABLES, deleteAccountRows, MUTATION_WAIT_MS, SOURCE_TABLES } from './erasure-tables.js';
export { withoutAccount } from './erasure-queue-scrub.js';
export type { ErasureDeps } from './erasure-deps.js';

const MAX_PASSES = 5;

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

async function underRollupLock(deps: ErasureDeps, task: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + ACTIVE_WAIT_MS;
  while (!(await withLock(deps.redis, deps.keys.rollupLock, task))) {
    if (Date.now() > deadline) throw new Error('the rollup held its lock too long; retrying');
    await sleep(50);
  }
}
