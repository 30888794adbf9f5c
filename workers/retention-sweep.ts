/**
 * The retention sweep: terminated accounts whose retention period has ended are erased,
 * through the same erasure job a data-subject request uses. Runs on a timer in worker
 * processes; a Redis lock keeps one sweep at a time, and an account already being erased
 * is not requested twice.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ClickHouseClient } from '../lib/clickhouse.js';
import { withLock } from '../lib/locks.js';
import { PeriodicTask } from '../lib/periodic.js';
import { accountsDueForErasure } from '../domain/accounts.js';
import type { ErasureJob, RedisKeys } from '../schemas/queues.js';
import { isBeingErased, requestErasure } from '../domain/erasure-requests.js';

export class RetentionSweep {
  private readonly task: PeriodicTask;

  constructor(
    private readonly deps: { ch: ClickHouseClient; redis: Redis; keys: RedisKeys; erasureQueue: Queue<ErasureJob>; log: Logger; intervalMs: number; now?: () => number },
  ) {
    this.task = new PeriodicTask('retention sweep', deps.intervalMs, () => this.runOnce(), deps.log);
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** Requests erasure of every due account not already being erased. Returns them. */
  async runOnce(): Promise<string[]> {
    const { ch, redis, keys, erasureQueue, log } = this.deps;
    const result = await withLock(redis, keys.retentionSweepLock, async () => {
      const due = await accountsDueForErasure(ch, (this.deps.now ?? Date.now)());
      const requested: string[] = [];
      for (const account of due) {
        if (await isBeingErased(redis, keys, account)) continue;
        const requestId = await requestErasure(redis, keys, erasureQueue, account, 'retention');
        log.info({ requestId }, 'retention ended for a terminated account: erasure requested');
        requested.push(account);
      }
      return requested;
    });
    return result?.value ?? [];
  }
}
