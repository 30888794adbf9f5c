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
 *   3. delete its rows from every billing table as mutations that rewrite the parts
 *      (mutations_sync = 2): physically gone, not masked; under the rollup's lock, so no
 *      rollup round that read them can write aggregates of them back;
 *   4. check that no row is left (a job that was already active in step 2 may have
 *      written after step 3 began) and repeat 2–3 if one is;
 *   5. unmark the account. It can be billed again from zero: new batches get new
 *      deduplication tokens, so no checksum of the old data can swallow them.
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
import { decodeRawRow, RAW_ROW_FORMAT, type RawRow } from '../schemas/raw-row.js';
import { payloadOf } from './queues.js';

/** Billing tables that hold an account_id: everything erasure must reach. */
export const ACCOUNT_TABLES = ['billing.samples_raw', 'billing.usage_hourly', 'billing.adjustments_hourly', 'billing.accounts'] as const;

const ACTIVE_WAIT_MS = 60_000;
const MAX_PASSES = 5;

export interface ErasureDeps {
  ch: ClickHouseClient;
  redis: Redis;
  keys: RedisKeys;
  batchQueue: Queue<BatchJob>;
  log: Logger;
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
        // Under the rollup's lock: a round that read the account's rows before the delete
        // could otherwise write its aggregates back after it.
        await underRollupLock(deps, async () => {
          for (const table of ACCOUNT_TABLES) {
            await deps.ch.command({
              query: `ALTER TABLE ${table} DELETE WHERE account_id = {account:String}`,
              query_params: { account },
              clickhouse_settings: { mutations_sync: '2' },
            });
          }
        });
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
  const decode = (line: string) => (batch.rowFormat === RAW_ROW_FORMAT ? decodeRawRow(line) : (JSON.parse(line) as RawRow));
  const lines = batch.rows.split('\n').filter((l) => l.length > 0 && decode(l).account_id !== account);
  if (lines.length === 0) return undefined;
  const hours = new Set<number>();
  for (const l of lines) hours.add(decode(l).usage_hour);
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
