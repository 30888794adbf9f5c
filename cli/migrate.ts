/**
 * `usage-meter migrate`: applies the ClickHouse migrations and exits.
 *
 * On a server (CLICKHOUSE_URL) it holds the migration lock in Redis, as every worker and
 * api process does at start, so it never runs a migration alongside one of them; it waits
 * up to REDIS_WAIT_MS for Redis to answer (compose may start it before Redis is healthy).
 * The embedded engine needs no lock: it locks its data directory itself, so no second
 * process can open it while this one migrates.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createClickHouse, describeClickHouse } from '../lib/clickhouse.js';
import { createLogger } from '../lib/log.js';
import { connectRedis, RedisUnavailableError, type RedisHandle } from '../lib/redis.js';
import { loadConfig, type Config } from '../schemas/config.js';
import { redisKeys } from '../schemas/queues.js';
import { migrate, migrateUnderLock } from '../lib/migrate.js';
import { settingsHelp, takeSettingFlags } from './settings-flags.js';

const REDIS_WAIT_MS = 60_000;

export async function runMigrateCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    console.log(`Usage: usage-meter migrate [settings]\n\nApplies schemas/migrations/*.sql in order, once each.\nOn a ClickHouse server it holds the migration lock in Redis (REDIS_URL).\n\n${settingsHelp()}`);
    return 0;
  }
  const config = loadConfig(process.env, takeSettingFlags(argv).overrides);
  const ch = createClickHouse(config);
  let redis: RedisHandle | undefined;
  try {
    let applied: number;
    if (config.CLICKHOUSE_URL) {
      redis = await connectWithin(config, REDIS_WAIT_MS);
      applied = await migrateUnderLock(ch, redis.client, redisKeys(config.KEY_PREFIX).migrationLock, createLogger(config.LOG_LEVEL));
    } else {
      applied = await migrate(ch);
    }
    console.log(`${describeClickHouse(config)}: ${applied} migration(s) applied`);
    return 0;
  } finally {
    await redis?.close();
    await ch.close();
  }
}

async function connectWithin(config: Config, waitMs: number): Promise<RedisHandle> {
  const log = createLogger(config.LOG_LEVEL);
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await connectRedis({ url: config.REDIS_URL, dataDir: config.DATA_DIR, log, startPrivateIfDown: false });
    } catch (err) {
      if (!(err instanceof RedisUnavailableError) || Date.now() > deadline) throw err;
      await sleep(1000);
    }
  }
}
