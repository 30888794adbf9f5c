/**
 * Redis for BullMQ and the pipeline's own small state. Connects to REDIS_URL; if nothing
 * answers at the default address and `redis-server` is installed, starts a private one
 * (AOF on) under the data directory. Refuses a Redis that may evict keys: an evicted job
 * is an acknowledged batch lost.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectionOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

export interface RedisHandle {
  /** Options for every further connection (BullMQ opens its own). */
  options: ConnectionOptions;
  /** Our own connection for pipeline state. */
  client: Redis;
  /** Where it is, for logs (never a password). */
  description: string;
  close(): Promise<void>;
}

export function redisOptionsFromUrl(url: string): RedisOptions {
  const u = new URL(url);
  const opts: RedisOptions = {
    host: u.hostname,
    port: Number(u.port || 6379),
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
  };
  if (u.username) opts.username = decodeURIComponent(u.username);
  if (u.password) opts.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') opts.tls = {};
  return opts;
}

async function tryConnect(options: RedisOptions): Promise<Redis | undefined> {
  const client = new Redis({ ...options, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: 2000 });
  client.on('error', () => undefined); // reported through the failed connect below
  try {
    await client.connect();
    await client.ping();
    return client;
  } catch {
    client.disconnect();
    return undefined;
  }
}

/** The eviction policy from INFO: CONFIG may be disabled on managed Redis. */
export async function checkNoEviction(client: Redis): Promise<void> {
  const info = await client.info('memory');
  const policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
  if (policy && policy !== 'noeviction') {
    throw new RedisUnavailableError(
      `Redis maxmemory-policy is "${policy}": queued batches could be evicted and lost. ` +
        'Set it to noeviction (redis.conf: maxmemory-policy noeviction, or CONFIG SET maxmemory-policy noeviction).',
    );
  }
}

export interface ConnectOptions {
  /** REDIS_URL, or undefined for the default address. */
  url: string | undefined;
  dataDir: string;
  log: Logger;
  /** Start a private redis-server when nothing answers. Default: only when `url` is unset. */
  startPrivateIfDown?: boolean;
}

export async function connectRedis(o: ConnectOptions): Promise<RedisHandle> {
  const { dataDir, log } = o;
  const url = o.url ?? DEFAULT_REDIS_URL;
  const options = redisOptionsFromUrl(url);
  let client = await tryConnect(options);
  let privateServer: ChildProcess | undefined;
  let finalOptions = options;
  let description = `${options.host}:${options.port}`;

  if (!client) {
    const canStartPrivate = (o.startPrivateIfDown ?? o.url === undefined) && hasRedisServer();
    if (!canStartPrivate) {
      throw new RedisUnavailableError(
        `no Redis answers at ${description}. Start one (e.g. \`redis-server --appendonly yes\`, or \`apt-get install redis-server\`), ` +
          'or set REDIS_URL to one that runs.',
      );
    }
    const started = await startPrivateRedis(dataDir, log);
    privateServer = started.child;
    finalOptions = { path: started.socket };
    description = `private redis-server (${started.socket})`;
    client = await tryConnect(finalOptions);
    if (!client) throw new RedisUnavailableError(`the private redis-server did not answer on ${started.socket}`);
  }
  try {
    await checkNoEviction(client);
    const persistence = await client.info('persistence');
    if (/aof_enabled:0/.test(persistence) && !privateServer) {
      log.warn('Redis has no AOF: a Redis crash loses acknowledged batches still queued. Use appendonly yes in production.');
    }
  } catch (err) {
    client.disconnect();
    privateServer?.kill('SIGTERM');
    throw err;
  }
  const main = client;
  // tryConnect fails fast (no reconnect) so a missing Redis is reported at once; once
  // connected, a Redis restart must not leave this connection closed for good: reconnect
  // with a capped backoff. Commands still fail fast while it is down (maxRetriesPerRequest
  // 1): ingest answers 5xx and the producer retries; the rollup retries on its next round.
  main.options.retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);
  // BullMQ workers need blocking commands without a retry cap.
  const shared = { ...finalOptions, maxRetriesPerRequest: null } as ConnectionOptions;
  return {
    options: shared,
    client: main,
    description,
    async close() {
      await main.quit().catch(() => main.disconnect());
      if (privateServer) await stopPrivateRedis(privateServer);
    },
  };
}

function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

async function startPrivateRedis(dataDir: string, log: Logger): Promise<{ child: ChildProcess; socket: string }> {
  const dir = path.join(dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  // A unix socket inside the data directory: no port to collide with, reachable only by us.
  const socket = path.join(dir, 'redis.sock');
  const child = spawn(
    'redis-server',
    ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', dir,
      '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', '--save', ''],
    { stdio: 'ignore' },
  );
  log.info({ dir }, 'no Redis at the default address: started a private redis-server with AOF');
  for (let i = 0; i < 100 && !existsSync(socket); i++) await sleep(50);
  return { child, socket };
}

async function stopPrivateRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM'); // redis-server flushes its AOF on SIGTERM
  await Promise.race([exited, sleep(5000)]);
}
