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
  /**
   * With `ingestProcesses`: the separate `--role ingest` processes (no engine: HTTP,
   * validation and enqueueing only) that producers post to instead of `url`.
   */
  ingest: Array<{ pid: number; url: string }>;
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

export async function startProduct(opts: { dataDir: string; prefix: string; env?: Record<string, string>; ingestProcesses?: number }): Promise<ProductServer> {
  mkdirSync(opts.dataDir, { recursive: true });
  const keys = { producer: randomBytes(18).toString('base64url'), billing: randomBytes(18).toString('base64url') };
  const logFile = path.join(opts.dataDir, 'server.log');
  const log = createWriteStream(logFile);
  const env = {
    DATA_DIR: opts.dataDir,
    KEY_PREFIX: opts.prefix,
    HOST: '127.0.0.1',
    REDIS_URL,
    API_KEYS: `producer:bench-producer:${keys.producer},billing:bench-billing:${keys.billing}`,
    ...opts.env,
  };
  const main = await startProcess({ ...env, PORT: String(await freePort()) }, log, logFile);
  // Extra ingest-only processes: the embedded engine stays in `main`, alone in its process.
  const ingest: Array<Awaited<ReturnType<typeof startProcess>>> = [];
  for (let i = 0; i < (opts.ingestProcesses ?? 0); i++) ingest.push(await startProcess({ ...env, ROLE: 'ingest', PORT: String(await freePort()) }, log, logFile));
  return {
    pid: main.child.pid as number,
    url: main.url,
    prefix: opts.prefix,
    dataDir: opts.dataDir,
    keys,
    logFile,
    ingest: ingest.map((p) => ({ pid: p.child.pid as number, url: p.url })),
    exited: main.exited,
    async stop(timeoutMs = 60_000) {
      const t0 = Date.now();
      // Ingest first (it stops taking batches), then the process that writes them.
      for (const p of [...ingest, main]) {
        if (p.child.exitCode === null) {
          p.child.kill('SIGTERM');
          const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
          await p.exited;
          clearTimeout(timer);
        }
      }
      log.end();
      return { code: main.child.exitCode, stopMs: Date.now() - t0 };
    },
  };
}

async function startProcess(env: Record<string, string>, log: NodeJS.WritableStream, logFile: string) {
  const child = spawnTsx('cli/main.ts', ['start'], { env });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${env.PORT}`;
  const deadline = Date.now() + 120_000;
  let ready = false;
  while (!ready) {
    if (child.exitCode !== null) throw new Error(`the product (${env.ROLE ?? 'all'}) exited during start (code ${child.exitCode}); see ${logFile}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the product (${env.ROLE ?? 'all'}) was not ready within 120 s; see ${logFile}`);
    }
    ready = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    if (!ready) await sleep(100);
  }
  return { child, url, exited };
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
