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
