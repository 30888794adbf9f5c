/**
 * Connecting to Redis: a private AOF server when none answers (and none was named), a
 * clear refusal of an evicting Redis, and a clear failure when nothing answers.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './support/net.js';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/log.js';
import { connectRedis } from '../lib/redis.js';

const log = createLogger('silent');
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'um-redis-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));


describe('connecting to Redis', () => {
  it('starts a private redis-server with AOF and noeviction when nothing answers, and stops it', async () => {
    const dataDir = tmp();
    const port = await freePort();
    const redis = await connectRedis({ url: `redis://127.0.0.1:${port}`, dataDir, log, startPrivateIfDown: true });
    try {
      expect(redis.description).toContain('private redis-server');
      expect(await redis.client.info('persistence')).toMatch(/aof_enabled:1/);
      expect(await redis.client.info('memory')).toMatch(/maxmemory_policy:noeviction/);
      await redis.client.set('probe', '1');
    } finally {
      await redis.close();
    }
    expect(existsSync(path.join(dataDir, 'redis', 'redis.sock'))).toBe(false); // the server is gone
    expect(existsSync(path.join(dataDir, 'redis'))).toBe(true); // its AOF stays with the data
  });

  it('fails at once, saying how to get Redis, when nothing answers at a named URL', async () => {
    const port = await freePort();
    const started = Date.now();
    await expect(connectRedis({ url: `redis://127.0.0.1:${port}`, dataDir: tmp(), log })).rejects.toThrow(
      new RegExp(`no Redis answers at 127.0.0.1:${port}.*apt-get install redis-server.*REDIS_URL`),
    );
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('refuses a Redis that may evict queued batches', async () => {
    const port = await freePort();
    const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'allkeys-lru'], { stdio: 'ignore' });
    try {
      await sleep(300);
      await expect(connectRedis({ url: `redis://127.0.0.1:${port}`, dataDir: tmp(), log })).rejects.toThrow(
        'Redis maxmemory-policy is "allkeys-lru": queued batches could be evicted and lost. Set it to noeviction',
      );
    } finally {
      server.kill('SIGKILL');
    }
  });
});
