/**
 * The product under test: `node --import tsx cli/main.ts start` as a child process on a
 * fresh data directory, with its own Redis key prefix and API keys, default settings
 * otherwise (LOG_LEVEL included: its log goes to a file in the data directory).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { spawnTsx } from './child.js';

export interface ProductServer {
  pid: number;
  url: string;
  prefix: string;
  dataDir: string;
  keys: { producer: string; billing: string };
  logFile: string;
  /** SIGTERM, then wait for a graceful stop (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<{ code: number | null; stopMs: number }>;
  exited: Promise<number | null>;
}

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export async function startProduct(opts: { dataDir: string; prefix: string; env?: Record<string, string> }): Promise<ProductServer> {
  mkdirSync(opts.dataDir, { recursive: true });
  const port = await freePort();
  const keys = { producer: randomBytes(18).toString('base64url'), billing: randomBytes(18).toString('base64url') };
  const logFile = path.join(opts.dataDir, 'server.log');
  const child = spawnTsx('cli/main.ts', ['start'], {
    env: {
      DATA_DIR: opts.dataDir,
      KEY_PREFIX: opts.prefix,
      HOST: '127.0.0.1',
      PORT: String(port),
      REDIS_URL,
      API_KEYS: `producer:bench-producer:${keys.producer},billing:bench-billing:${keys.billing}`,
      ...opts.env,
    },
  });
  const log = createWriteStream(logFile);
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + 120_000;
  let ready = false;
  while (!ready) {
    if (child.exitCode !== null) throw new Error(`the product exited during start (code ${child.exitCode}); see ${logFile}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the product was not ready within 120 s; see ${logFile}`);
    }
    ready = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    if (!ready) await sleep(100);
  }
  return {
    pid: child.pid as number,
    url,
    prefix: opts.prefix,
    dataDir: opts.dataDir,
    keys,
    logFile,
    exited,
    async stop(timeoutMs = 60_000) {
      const t0 = Date.now();
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(timer);
      }
      log.end();
      return { code: child.exitCode, stopMs: Date.now() - t0 };
    },
  };
}

/** Deletes every Redis key under `<prefix>:` (the product and BullMQ keep all theirs there). */
export async function deleteRedisKeys(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

/** The pid of the Redis server, when it runs on this machine (INFO server: process_id). */
export async function localRedisPid(): Promise<number | undefined> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
    return pid && existsSync(`/proc/${pid}`) && /redis/.test(readFileSync(`/proc/${pid}/comm`, 'utf8')) ? pid : undefined;
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}
