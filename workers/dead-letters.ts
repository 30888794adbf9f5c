/**
 * Dead letters: batch jobs whose attempts are spent (or whose payload can never be valid)
 * stay in BullMQ's failed set of the `batches` queue with their payload and failure reason;
 * workers/queues.ts never removes them (only a replay or an erasure does). This module
 * lists, inspects, counts and replays them; `usage-meter dead-letters` is its command line.
 *
 * A dead letter of an acknowledged batch still holds its in-flight mark (the writer never
 * cleared it), so `complete` stays false for the hours it touches until it is replayed:
 * billing is told that data is missing instead of being shown a short total.
 *
 * Replay puts the job back on the queue as a fresh job with the same payload and a full
 * set of attempts. It keeps the job's id, which is the batch id its in-flight mark and the
 * reconciler know it by, and it is one atomic step in Redis (BullMQ's reprocess script:
 * failed set → wait list), so at no moment is the batch in neither place or in both.
 * Replaying is safe even if part of the batch was written before it failed: the insert
 * carries the batch id as deduplication token, and billing.counted_samples keeps the first
 * copy of every sample anyway. The failure reason of each replayed attempt is kept in the
 * job's log (`show` prints it), since BullMQ clears `failedReason` when it re-queues.
 */
import type { Job, Queue } from 'bullmq';
import { batchJobSchema, type BatchJob } from '../schemas/queues.js';

export interface DeadLetterSummary {
  id: string;
  /** When the job was first accepted (epoch ms). */
  createdAt: number;
  /** When its last attempt failed (epoch ms). */
  failedAt: number | undefined;
  attemptsMade: number;
  maxAttempts: number;
  reason: string;
  /** Whether the payload still matches the batch job schema (a poison payload does not). */
  payloadValid: boolean;
  /** From a valid payload: what a replay would write. */
  batch?: { batchSeq: number; rowCount: number; accounts: number; hours: number[]; acceptedAtMs: number };
}

export interface DeadLetter extends DeadLetterSummary {
  /** The payload exactly as stored: a replay re-queues exactly this. */
  data: unknown;
  /** Why the payload fails its schema, when it does. */
  payloadErrors: string[];
  /** The error of each failed attempt that BullMQ kept, newest last. */
  stacktrace: string[];
  /** The job's log: one line per earlier replay, with the reason it had failed. */
  logs: string[];
}

export interface ReplayResult {
  id: string;
  replayed: boolean;
  /** Why it was not replayed (not found, or no longer dead-lettered). */
  skipped?: string;
}

export class DeadLetterNotFoundError extends Error {
  override name = 'DeadLetterNotFoundError';
}

type AnyJob = Job<BatchJob>;

export async function countDeadLetters(queue: Queue<BatchJob>): Promise<number> {
  return queue.getFailedCount();
}

/** Newest first. `offset`/`limit` page through large sets without loading them whole. */
export async function listDeadLetters(queue: Queue<BatchJob>, page: { offset?: number; limit?: number } = {}): Promise<DeadLetterSummary[]> {
  const offset = Math.max(0, page.offset ?? 0);
  const limit = Math.max(1, page.limit ?? 50);
  const ids = await queue.getRanges(['failed'], offset, offset + limit - 1, false);
  const out: DeadLetterSummary[] = [];
  for (const id of ids) {
    const job = (await queue.getJob(id)) as AnyJob | undefined;
    if (job) out.push(summarize(job)); // removed between the two reads: nothing to show
  }
  return out;
}

/** The dead letter with this id, or undefined when no such job is dead-lettered. */
export async function inspectDeadLetter(queue: Queue<BatchJob>, id: string): Promise<DeadLetter | undefined> {
  const job = await failedJob(queue, id);
  if (!job) return undefined;
  const parsed = batchJobSchema.safeParse(job.data);
  const { logs } = await queue.getJobLogs(id, 0, 999, true);
  return {
    ...summarize(job),
    data: job.data,
    payloadErrors: parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`),
    stacktrace: job.stacktrace ?? [],
    logs,
  };
}

/** Re-queues one dead letter with its payload unchanged and its attempts reset. */
export async function replayDeadLetter(queue: Queue<BatchJob>, id: string, nowMs = Date.now()): Promise<void> {
  const job = await failedJob(queue, id);
  if (!job) throw new DeadLetterNotFoundError(`no dead-lettered batch job with id ${id}`);
  const previous = { attempts: job.attemptsMade, reason: job.failedReason ?? '' };
  // Atomic in Redis: the job leaves the failed set and enters the wait list in one script.
  // It fails (and nothing changes) if the job left the failed set meanwhile.
  await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
  // After the move: a crash here loses only this history line, never the job.
  await job.log(`${new Date(nowMs).toISOString()} replayed; it had failed after ${previous.attempts} attempt(s): ${previous.reason}`);
}

/**
 * Replays every job dead-lettered when the call starts. The ids are read first, so a job
 * that fails again at once (a poison payload) is not replayed in a loop: it is back in the
 * set, with its reason, for the next look.
 */
export async function replayAllDeadLetters(queue: Queue<BatchJob>, nowMs = Date.now()): Promise<ReplayResult[]> {
  const ids: string[] = [];
  const PAGE = 1000;
  for (let start = 0; ; start += PAGE) {
    const page = await queue.getRanges(['failed'], start, start + PAGE - 1, true);
    ids.push(...page);
    if (page.length < PAGE) break;
  }
  const results: ReplayResult[] = [];
  for (const id of [...new Set(ids)]) {
    try {
      await replayDeadLetter(queue, id, nowMs);
      results.push({ id, replayed: true });
    } catch (err) {
      results.push({ id, replayed: false, skipped: (err as Error).message });
    }
  }
  return results;
}

async function failedJob(queue: Queue<BatchJob>, id: string): Promise<AnyJob | undefined> {
  const job = (await queue.getJob(id)) as AnyJob | undefined;
  if (!job) return undefined;
  return (await job.getState()) === 'failed' ? job : undefined;
}

function summarize(job: AnyJob): DeadLetterSummary {
  const parsed = batchJobSchema.safeParse(job.data);
  const summary: DeadLetterSummary = {
    id: String(job.id),
    createdAt: job.timestamp,
    failedAt: job.finishedOn,
    attemptsMade: job.attemptsMade,
    maxAttempts: job.opts.attempts ?? 1,
    reason: job.failedReason ?? '',
    payloadValid: parsed.success,
  };
  if (parsed.success) {
    const b = parsed.data;
    summary.batch = { batchSeq: b.batchSeq, rowCount: b.rowCount, accounts: b.accounts.length, hours: b.hours, acceptedAtMs: b.acceptedAtMs };
  }
  return summary;
}
