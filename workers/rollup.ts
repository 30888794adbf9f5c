/**
 * Recomputes dirty hours. An hour is dirty once a batch with samples in it has been
 * written; recomputing it rebuilds its billing aggregates, ingest stats and analytics
 * from billing.counted_samples under a new version, so a late sample re-aggregates its
 * hour and a repeated run changes nothing.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ClickHouseClient } from '../lib/clickhouse.js';
import { withLock } from '../lib/locks.js';
import { PeriodicTask } from '../lib/periodic.js';
import { RollupDebounce } from './rollup-debounce.js';
import type { RedisKeys } from '../schemas/queues.js';
import { loadPeriodStates, rollupPeriodParams, UINT64_MAX, type PeriodState } from '../queries/periods.js';
import {
  PRUNE_ANALYTICS_SQL,
  ROLLUP_ADJUSTMENTS_SQL,
  ROLLUP_ANALYTICS_SQL,
  ROLLUP_STATS_SQL,
  ROLLUP_SUPPRESSION_SQL,
  ROLLUP_USAGE_SQL,
} from './rollup-sql.js';

export interface RollupDeps {
  ch: ClickHouseClient;
  redis: Redis;
  keys: RedisKeys;
  log: Logger;
  k: number;
  /** The analytics allow-list: which attributes may become cohort labels. */
  analyticsAttributes: readonly string[];
  intervalMs: number;
  /** RAW_RETENTION_DAYS: hours near the TTL are never recomputed (see runOnce). */
  rawRetentionDays: number;
  /** Debounce: an hour still receiving data waits until it is quiet this long… */
  quietMs: number;
  /** …or until it has waited this long in all, so a steady stream is still aggregated. */
  maxDelayMs: number;
  onHour?: (ms: number) => void;
}

// Clears the dirty mark only if no batch marked the hour again while it was recomputed.
const CLEAR_IF_UNCHANGED = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0`;

const PRUNE_EVERY_MS = 60_000;

export interface RollupContext {
  k: number;
  analyticsAttributes: readonly string[];
  /** Billing periods that started closing, oldest first: they split on-time from late. */
  periods: readonly PeriodState[];
}

export async function rollupHour(ch: ClickHouseClient, hour: number, version: number, ctx: RollupContext): Promise<void> {
  const allowed = (name: string) => (ctx.analyticsAttributes.includes(name) ? 1 : 0);
  const params = {
    hour,
    version,
    k: ctx.k,
    allowInstanceType: allowed('instance_type'),
    allowZone: allowed('zone'),
    ...rollupPeriodParams(ctx.periods, hour),
  };
  const queries = [ROLLUP_USAGE_SQL, ROLLUP_STATS_SQL, ROLLUP_ANALYTICS_SQL, ROLLUP_SUPPRESSION_SQL];
  // Only hours of periods that started closing can have late samples.
  if (params.onTimeSeq !== UINT64_MAX) queries.push(ROLLUP_ADJUSTMENTS_SQL);
  for (const query of queries) await ch.command({ query, query_params: params });
}

export class RollupScheduler {
  private readonly debounce: RollupDebounce;
  private lastPrune = 0;
  private lastVersion = 0;
  // A failed round leaves its hours dirty: the next round retries them.
  private readonly task: PeriodicTask;

  constructor(private readonly deps: RollupDeps) {
    this.task = new PeriodicTask('rollup round', deps.intervalMs, () => this.runOnce(), deps.log);
    this.debounce = new RollupDebounce(deps.quietMs, deps.maxDelayMs);
  }

  start(): void {
    this.task.start();
  }

  /** Finishes the round in progress (its hours stay consistent) and stops. */
  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One pass over the dirty hours, oldest first. Returns how many hours were recomputed. */
  async runOnce(): Promise<number> {
    const { redis, keys, ch, log } = this.deps;
    const dirty = await redis.hgetall(keys.dirtyHours);
    const hours = Object.keys(dirty).map(Number).sort((a, b) => a - b);
    if (hours.length === 0) return 0;
    // Read after the dirty set: a period that started closing before a batch marked its
    // hour is seen here, so that hour is split with the period's close_seq.
    const ctx: RollupContext = { k: this.deps.k, analyticsAttributes: this.deps.analyticsAttributes, periods: await loadPeriodStates(ch) };
    let done = 0;
    // Raw rows of an hour older than this may be partly deleted by their TTL already;
    // recomputing from them would shrink a bill. Ingest refuses samples that old, so such
    // an hour is only dirty if its batch waited half a day: it is reported, not recomputed.
    const frozenBefore = (Date.now() - (this.deps.rawRetentionDays - 0.5) * 86_400_000) / 1000;
    const now = Date.now();
    for (const hour of hours) {
      if (this.task.stopRequested) break;
      if (!this.debounce.isDue(hour, dirty[String(hour)]!, now)) continue;
      if (hour < frozenBefore) {
        log.error({ hour: new Date(hour * 1000).toISOString() }, 'dirty hour is past the raw retention: not recomputed');
        await redis.hdel(keys.dirtyHours, String(hour));
        continue;
      }
      // Another worker holding the hour's lock is recomputing it: skip it this round.
      const result = await withLock(redis, keys.rollupLock(hour), async () => {
        // Read the generation before recomputing: every batch counted in it is already in
        // ClickHouse, so the recomputation below includes it.
        const generation = await redis.hget(keys.dirtyHours, String(hour));
        if (generation === null) return false;
        const started = performance.now();
        await rollupHour(ch, hour, this.nextVersion(), ctx);
        await redis.eval(CLEAR_IF_UNCHANGED, 1, keys.dirtyHours, String(hour), generation);
        this.debounce.forget(hour);
        this.deps.onHour?.(performance.now() - started);
        return true;
      });
      if (result?.value) done++;
    }
    if (done > 0 && Date.now() - this.lastPrune > PRUNE_EVERY_MS) {
      this.lastPrune = Date.now();
      await ch.command({ query: PRUNE_ANALYTICS_SQL }).catch((err: unknown) => log.warn({ err }, 'pruning old analytics versions failed'));
    }
    return done;
  }

  /** Strictly increasing within this process, and ordered by time across processes. */
  private nextVersion(): number {
    this.lastVersion = Math.max(Date.now() * 1000, this.lastVersion + 1);
    return this.lastVersion;
  }
}
