/**
 * Removes in-flight marks that no job will ever clear. Ingest records a batch as in flight
 * just before adding its job; a crash between the two leaves a mark without a job (no 202
 * was sent, so nothing acknowledged is lost), which would keep `complete` false forever.
 * A mark is removed only when its job is missing on two passes INFLIGHT_RECONCILE_MS apart
 * (default a minute): adding a job takes milliseconds, so a mark that old without one is a
 * leftover. Shorter passes clear a crash's leftovers sooner (`complete` is false until
 * then); they must stay well above how long an ingest process's `queue.add` can be held
 * up after its claim (e.g. while its BullMQ connection reconnects after a Redis outage).
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { inflightBatches, release } from '../domain/ledger.js';
import type { BatchJob, RedisKeys } from '../schemas/queues.js';

export class InflightReconciler {
  private suspects = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  /** passMs: INFLIGHT_RECONCILE_MS, the time between two passes (default a minute). */
  constructor(private readonly deps: { redis: Redis; keys: RedisKeys; queue: Queue<BatchJob>; log: Logger; passMs: number }) {}

  start(): void {
    this.timer = setInterval(() => {
      this.pass().catch((err: unknown) => this.deps.log.warn({ err }, 'in-flight reconciliation failed'));
    }, this.deps.passMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
  }

  async pass(): Promise<number> {
    const { redis, keys, queue, log } = this.deps;
    const members = await inflightBatches(redis, keys);
    const jobless = new Set<string>();
    for (const batchId of members) {
      if ((await queue.getJobState(batchId)) === 'unknown') jobless.add(batchId);
    }
    let removed = 0;
    for (const batchId of jobless) {
      if (this.suspects.has(batchId)) {
        removed += await release(redis, keys, batchId);
        log.warn({ batchId }, 'removed an in-flight mark left by a crash before its job was queued');
      }
    }
    this.suspects = jobless;
    return removed;
  }
}
