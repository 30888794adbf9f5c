/** What every role's parts are started with, and where they register how to stop. */
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { KeyRing } from '../lib/auth.js';
import type { Metrics } from '../lib/metrics.js';
import type { RedisHandle } from '../lib/redis.js';
import type { Config } from '../schemas/config.js';
import type { BatchJob, ErasureJob, RedisKeys } from '../schemas/queues.js';

export interface RoleContext {
  config: Config;
  log: Logger;
  redis: RedisHandle;
  keys: RedisKeys;
  metrics: Metrics;
  keyRing: KeyRing;
  batchQueue: Queue<BatchJob>;
  erasureQueue: Queue<ErasureJob>;
  /**
   * Called in reverse order on close: register a part's stop right after starting it. The
   * name is what the log says if stopping it is slow or never finishes (lib/shutdown.ts).
   */
  onClose(name: string, stop: () => Promise<unknown>, force?: () => Promise<unknown>): void;
}
