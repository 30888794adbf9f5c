/** Reaching the pipeline's Redis and batch queue from a command that runs beside it (dead-letters, quarantine). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import { pino, type Logger } from 'pino';
import { connectRedis, RedisUnavailableError, type RedisHandle } from '../lib/redis.js';
import type { Config } from '../schemas/config.js';
import { redisKeys, type BatchJob, type RedisKeys } from '../schemas/queues.js';
import { createBatchQueue } from '../workers/queues.js';

/**
 * The Redis the pipeline uses: REDIS_URL; else the default address; else the private
 * redis-server a running pipeline started under DATA_DIR (its socket); else, when no
 * pipeline runs, that private server started from its AOF for as long as the command runs.
 * Never a second server on a live one's socket and AOF.
 */
export async function connectForCli(config: Config, log: Logger): Promise<RedisHandle> {
  if (config.REDIS_URL) return connectRedis({ url: config.REDIS_URL, dataDir: config.DATA_DIR, log, startPrivateIfDown: false });
  try {
    return await connectRedis({ url: undefined, dataDir: config.DATA_DIR, log, startPrivateIfDown: false });
  } catch (err) {
    if (!(err instanceof RedisUnavailableError)) throw err;
  }
  // Where lib/redis.ts puts a private server's socket.
  const socket = path.join(config.DATA_DIR, 'redis', 'redis.sock');
  if (existsSync(socket)) {
    const client = new Redis({ path: socket, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    client.on('error', () => undefined);
    const live = await client.connect().then(() => true, () => false);
    if (live) {
      return {
        options: { path: socket, maxRetriesPerRequest: null },
        client,
        description: `private redis-server (${socket})`,
        close: async () => {
          await client.quit().catch(() => client.disconnect());
        },
      };
    }
    client.disconnect();
  }
  return connectRedis({ url: undefined, dataDir: config.DATA_DIR, log, startPrivateIfDown: true });
}

export interface QueueTools {
  log: Logger;
  redis: RedisHandle;
  keys: RedisKeys;
  queue: Queue<BatchJob>;
  close(): Promise<void>;
}

/** Logs to stderr (stdout carries the listing or JSON a script may read), Redis, the batch queue. */
export async function openQueueTools(config: Config): Promise<QueueTools> {
  const log = pino({ name: 'usage-meter', level: config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL }, pino.destination(2));
  const redis = await connectForCli(config, log);
  const keys = redisKeys(config.KEY_PREFIX);
  const queue = createBatchQueue({ connection: redis.options, prefix: keys.bullPrefix, attempts: config.JOB_ATTEMPTS });
  return {
    log,
    redis,
    keys,
    queue,
    close: async () => {
      await queue.close();
      await redis.close();
    },
  };
}

export interface QueueConsumers {
  /** Workers of the batch queue under the prefix looked at. */
  workers: number;
  /** Other KEY_PREFIXes whose batch queue has workers on this Redis (a likely mix-up). */
  otherPrefixes: string[];
  /** True when the server hides its client list (some managed Redis): nobody can tell. */
  unknown: boolean;
}

/**
 * Who consumes the batch queue: BullMQ names each worker's connection
 * `<bull prefix>:<base64 queue name>` (with `:w:<name>` for named workers), which
 * `queue.getWorkers()` matches under this prefix; the same names under another prefix say
 * where a pipeline does run.
 */
export async function batchQueueConsumers(queue: Queue<BatchJob>, client: Redis): Promise<QueueConsumers> {
  const workers = await queue.getWorkers();
  if (workers.length === 1 && workers[0]?.name === 'GCP does not support client list') return { workers: 0, otherPrefixes: [], unknown: true };
  const suffix = `:bull:${Buffer.from(queue.name).toString('base64')}`;
  const others = new Set<string>();
  const list = String(await client.client('LIST').catch(() => ''));
  for (const m of list.matchAll(/(?:^| )name=(\S+)/gm)) {
    const name = m[1]!;
    const at = name.indexOf(`${suffix}`);
    if (at <= 0) continue;
    const rest = name.slice(at + suffix.length);
    if (rest === '' || rest.startsWith(':w:')) others.add(name.slice(0, at));
  }
  const own = queue.opts.prefix?.replace(/:bull$/, '');
  if (own !== undefined) others.delete(own);
  return { workers: workers.length, otherPrefixes: [...others].sort().slice(0, 10), unknown: false };
}
