/**
 * Removes in-flight marks that no job will ever clear. Ingest records a batch as in flight
 * just before adding its job; a crash between the two leaves a mark without a job (no 202
 * was sent, so nothing acknowledged is lost), which would keep `complete` false forever.
 * A mark is removed only when its job is missing on two passes a minute apart: adding a
 * job takes milliseconds, so a mark that old without one is a leftover.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { release } from '../lib/inflight.js';
import type { BatchJob, RedisKeys } from '../schemas/queues.js';

const PASS_MS = 60_000;

export class InflightReconciler {
  private suspects = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: { redis: Redis; keys: RedisKeys; queue: Queue<BatchJob>; log: Logger }) {}

  start(): void {
    this.timer = setInterval(() => {
      this.pass().catch((err: unknown) => this.deps.log.warn({ err }, 'in-flight reconciliation failed'));
    }, PASS_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
  }

  async pass(): Promise<number> {
    const { redis, keys, queue, log } = this.deps;
    const members = await redis.zrange(keys.inflight, '0', '999');
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
