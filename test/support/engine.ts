/**
 * A real embedded engine on a scratch directory and a real Redis connection for one test
 * file, for tests that drive workers and the ledger directly rather than a whole pipeline.
 * Every Redis key under `prefix` is deleted afterwards.
 */
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { createClickHouse, type ClickHouseClient } from '../../lib/clickhouse.js';
import { migrate } from '../../lib/migrate.js';
import { scratchDirs } from './temp.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface EngineAndRedis {
  ch: ClickHouseClient;
  redis: Redis;
}

/** Opens both in beforeAll (migrated unless `migrated: false`) and closes them in afterAll. */
export function engineAndRedis(name: string, prefix: string, opts: { migrated?: boolean } = {}): EngineAndRedis {
  const scratch = scratchDirs();
  const handles = {} as EngineAndRedis;
  beforeAll(async () => {
    handles.ch = createClickHouse({ CLICKHOUSE_URL: undefined, CLICKHOUSE_USER: 'default', CLICKHOUSE_PASSWORD: '', DATA_DIR: path.join(scratch(`${name}-`), 'ch') });
    if (opts.migrated !== false) await migrate(handles.ch);
    handles.redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await handles.ch?.close();
    if (handles.redis) {
      const found = await handles.redis.keys(`${prefix}:*`);
      if (found.length > 0) await handles.redis.del(...found);
      handles.redis.disconnect();
    }
  });
  return handles;
}
