/**
 * Short Redis locks renewed while their holder works: a process killed mid-task (SIGKILL,
 * OOM) leaves a lock that lapses within seconds, not one that blocks the task for minutes,
 * and a lock is only ever released or extended by its owner.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

export const LOCK_MS = 15_000;
const RENEW_MS = 5_000;

/** This process's lock owner id: unique, so two processes never take one for the other. */
export const LOCK_OWNER = `${process.pid}-${randomUUID()}`;

/** Runs `task` holding `key`; returns undefined without running it when another holds the lock. */
export async function withLock<T>(redis: Redis, key: string, task: () => Promise<T>): Promise<{ value: T } | undefined> {
  if ((await redis.set(key, LOCK_OWNER, 'PX', LOCK_MS, 'NX')) !== 'OK') return undefined;
  const renew = setInterval(() => {
    redis.eval(EXTEND, 1, key, LOCK_OWNER, String(LOCK_MS)).catch(() => undefined);
  }, RENEW_MS);
  try {
    return { value: await task() };
  } finally {
    clearInterval(renew);
    await redis.eval(RELEASE, 1, key, LOCK_OWNER).catch(() => undefined);
  }
}

export interface WaitOptions {
  /** Give up (throw) after waiting this long for another holder; default 30 minutes. */
  timeoutMs?: number;
  /** Poll interval while another process holds the lock. */
  pollMs?: number;
  /** Called once when the lock is found held, and then every minute of waiting. */
  onWait?: (waitedMs: number) => void;
}

export class LockWaitTimeout extends Error {
  override name = 'LockWaitTimeout';
}

/**
 * Runs `task` holding `key`, waiting while another process holds it (a holder renews it
 * while it works, and a dead one's lapses within LOCK_MS). For work every process must see
 * done before it goes on, such as migrations: the waiter runs the task after the holder,
 * and finds nothing left to do.
 */
export async function withLockWait<T>(redis: Redis, key: string, task: () => Promise<T>, opts: WaitOptions = {}): Promise<T> {
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 30 * 60_000;
  let reported = -Infinity;
  for (;;) {
    const result = await withLock(redis, key, task);
    if (result) return result.value;
    const waited = Date.now() - started;
    if (waited > timeoutMs) throw new LockWaitTimeout(`${key} was held by another process for over ${Math.round(timeoutMs / 1000)} s`);
    if (waited - reported >= 60_000) {
      reported = waited;
      opts.onWait?.(waited);
    }
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? 200));
  }
}
