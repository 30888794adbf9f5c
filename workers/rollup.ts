/**
 * The rollup round. Three kinds of work, one round at a time across all workers:
 *  - fold: every written batch up to the fold watermark is added to its hours' billing
 *    aggregates and ingest stats, in acceptance order (rollup-fold.ts). This is what makes
 *    a sample visible; its cost follows the new rows, not the size of the hour.
 *  - recompute: an hour marked dirty (a batch written behind the watermark, a billing
 *    period closing, lost fold progress) is rebuilt whole from billing.counted_samples
 *    under a new version, so a repeated run changes nothing.
 *  - analytics: k-anonymous cohorts are not additive, so each hour that changed is
 *    recomputed from its per-resource billing rows, debounced: seconds behind billing.
 */
import { z } from 'zod';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { TupleParam } from '@clickhouse/client';
import { paramRuns, queryRows, stringElementSize, type ClickHouseClient } from '../lib/clickhouse.js';
import { withLock } from '../lib/locks.js';
import { PeriodicTask } from '../lib/periodic.js';
import { RollupDebounce } from './rollup-debounce.js';
import { catchUp, type CatchUp } from './replica-barrier.js';
import { advanceFoldWatermark, finishFoldRound, hourDone, hoursToRecompute, pendingHours, readFoldedThrough, releaseFoldedHours } from '../domain/ledger.js';
import { foldHours } from './rollup-fold.js';
import { pruneAnalyticsVersions } from './rollup-prune.js';
import { issueRowVersion } from '../domain/row-versions.js';
import type { RedisKeys } from '../schemas/queues.js';
import { PeriodStateCache, rollupPeriodParams, UINT64_MAX, type PeriodState } from '../domain/periods.js';
import { DEFAULT_ANALYTICS_LABEL_PATTERN } from '../schemas/config.js';
import {
  DELETE_STALE_USAGE_SQL,
  ROLLUP_ADJUSTMENTS_SQL,
  ROLLUP_ANALYTICS_SQL,
  ROLLUP_STATS_SQL,
  ROLLUP_SUPPRESSION_SQL,
  ROLLUP_USAGE_SQL,
  STALE_USAGE_KEYS_SQL,
} from './rollup-sql.js';

export interface RollupDeps {
  ch: ClickHouseClient;
  redis: Redis;
  keys: RedisKeys;
  log: Logger;
  k: number;
  /** The analytics allow-list: which attributes may become cohort labels. */
  analyticsAttributes: readonly string[];
  /** Label values published however few accounts share them (default: DEFAULT_LABEL_ALLOW_LIST). */
  labelAllowList?: LabelAllowList;
  /** Rounds run at least this often… */
  intervalMs: number;
  /** …and, when kicked (a batch was written), as soon as this long after the previous one. */
  minGapMs?: number;
  /** RAW_RETENTION_DAYS: hours near the TTL are never recomputed (see round). */
  rawRetentionDays: number;
  /** Debounce of whole-hour work: an hour still receiving data waits until it is quiet this long… */
  quietMs: number;
  /** …or until it has waited this long in all, so a steady stream is still aggregated. */
  maxDelayMs: number;
  /**
   * Server mode: before each round, catch up on a new write replica (replica-barrier.ts).
   * Off for the embedded engine, which is its only replica.
   */
  replicaBarrier?: boolean;
  onReplicaCatchUp?: (c: CatchUp) => void;
  onHour?: (ms: number) => void;
  onFold?: (rows: number, ms: number) => void;
  /** This host's wall clock, the floor of the row versions it takes (default Date.now; tests skew it). */
  clock?: () => number;
}

const PRUNE_EVERY_MS = 60_000;

/** ANALYTICS_LABEL_PATTERN and ANALYTICS_LABEL_VALUES: see rollup-sql.ts PUBLISHED_LABEL. */
export interface LabelAllowList {
  pattern: string;
  values: readonly string[];
}

export const DEFAULT_LABEL_ALLOW_LIST: LabelAllowList = { pattern: DEFAULT_ANALYTICS_LABEL_PATTERN, values: [] };

export interface RollupContext {
  k: number;
  analyticsAttributes: readonly string[];
  labelAllowList?: LabelAllowList;
  /** Billing periods that started closing, oldest first: they split on-time from late. */
  periods: readonly PeriodState[];
}

/**
 * Recomputes one hour whole from its rows accepted up to `through` (the fold watermark:
 * later rows are folded in on top by later rounds).
 */
export async function rollupHour(ch: ClickHouseClient, hour: number, version: number, ctx: RollupContext, through: number | string = UINT64_MAX): Promise<void> {
  const params = { hour, version, through: String(through), ...rollupPeriodParams(ctx.periods, hour) };
  await ch.command({ query: ROLLUP_USAGE_SQL, query_params: params });
  // Before stats and analytics, which read the hour's rows back (rollup-sql.ts says why).
  await deleteStaleUsage(ch, hour, version);
  const queries = [ROLLUP_STATS_SQL];
  // Only hours of periods that started closing can have late samples.
  if (params.onTimeSeq !== UINT64_MAX) queries.push(ROLLUP_ADJUSTMENTS_SQL);
  for (const query of queries) await ch.command({ query, query_params: params });
  await rollupAnalytics(ch, hour, version, ctx);
}

/**
 * Removes the hour's aggregate rows that the recomputation under `version` did not
 * produce. A crash between the insert and this leaves the hour dirty (its mark is cleared
 * only after rollupHour returns), so the next round repeats both under a newer version.
 */
async function deleteStaleUsage(ch: ClickHouseClient, hour: number, version: number): Promise<void> {
  const stale = await queryRows(ch, z.object({ account_id: z.string(), metric: z.string(), resource_id: z.string() }), STALE_USAGE_KEYS_SQL, { hour, version });
  // Usually none; when many, in runs that keep the URL parameter under URL_PARAM_BUDGET.
  const size = (r: (typeof stale)[number]) => stringElementSize(r.account_id) + stringElementSize(r.metric) + stringElementSize(r.resource_id) + 2;
  for (const run of paramRuns(stale, size)) {
    await ch.command({
      query: DELETE_STALE_USAGE_SQL,
      query_params: { hour, version, stale: run.map((r) => new TupleParam([r.account_id, r.metric, r.resource_id])) },
    });
  }
}

/** The hour's k-anonymous analytics, from its per-resource billing rows. */
export async function rollupAnalytics(ch: ClickHouseClient, hour: number, version: number, ctx: Omit<RollupContext, 'periods'>): Promise<void> {
  const allowed = (name: string) => (ctx.analyticsAttributes.includes(name) ? 1 : 0);
  const labels = ctx.labelAllowList ?? DEFAULT_LABEL_ALLOW_LIST;
  const params = {
    hour, version, k: ctx.k, allowInstanceType: allowed('instance_type'), allowZone: allowed('zone'),
    labelPattern: labels.pattern, labelValues: labels.values,
  };
  for (const query of [ROLLUP_ANALYTICS_SQL, ROLLUP_SUPPRESSION_SQL]) await ch.command({ query, query_params: params });
}

export class RollupScheduler {
  private readonly recomputeDebounce: RollupDebounce;
  private readonly analyticsDebounce: RollupDebounce;
  private lastPrune = 0;
  // A failed round leaves its hours pending or dirty: the next round retries them.
  private readonly task: PeriodicTask;
  private readonly periodStates: PeriodStateCache;

  constructor(private readonly deps: RollupDeps) {
    this.periodStates = new PeriodStateCache(deps.ch, deps.redis, deps.keys.periodsVersion);
    this.task = new PeriodicTask('rollup round', deps.intervalMs, () => this.runOnce(), deps.log, deps.minGapMs);
    this.recomputeDebounce = new RollupDebounce(deps.quietMs, deps.maxDelayMs);
    this.analyticsDebounce = new RollupDebounce(deps.quietMs, deps.maxDelayMs);
  }

  start(): void {
    this.task.start();
  }

  /** New rows were written: fold them in soon, not at the next tick. */
  kick(): void {
    this.task.kick();
  }

  /** Finishes the round in progress (its hours stay consistent) and stops. */
  stop(): Promise<void> {
    return this.task.stop();
  }

  /** One round. Returns how many hours it folded, recomputed or re-analysed. */
  async runOnce(): Promise<number> {
    const { redis, keys } = this.deps;
    // One round at a time: a fold reads an aggregate and writes it back with more added.
    const result = await withLock(redis, keys.rollupLock, () => this.round());
    return result?.value ?? 0;
  }

  private async round(): Promise<number> {
    const { redis, keys, ch, log } = this.deps;
    // Read-your-writes first: nothing below may read a replica that has not caught up.
    if (this.deps.replicaBarrier) {
      const c = await catchUp(ch, redis, keys);
      if (c.changed) {
        log.info({ replica: c.replica, synced: c.synced }, 'rollup caught up on a new write replica');
        this.deps.onReplicaCatchUp?.(c);
      }
    }
    // Period states are read after the hours to work on (in fold() and below): a period
    // that started closing before a batch or the closer marked its hour is seen, so that
    // hour is split with the period's close_seq.
    const context = async (): Promise<RollupContext> => ({
      k: this.deps.k,
      analyticsAttributes: this.deps.analyticsAttributes,
      ...(this.deps.labelAllowList ? { labelAllowList: this.deps.labelAllowList } : {}),
      periods: await this.periodStates.get(),
    });
    // Raw rows of an hour older than this may be partly deleted by their TTL already;
    // recomputing from them would shrink a bill. Ingest refuses samples that old, so such
    // an hour only gets rows if its batch waited half a day: it is reported, not recomputed.
    const frozenBefore = (Date.now() - (this.deps.rawRetentionDays - 0.5) * 86_400_000) / 1000;
    const frozen = (hour: number, kind: string) => {
      log.error({ hour: new Date(hour * 1000).toISOString(), kind }, 'hour is past the raw retention: not recomputed');
    };
    let done = await this.fold(context, frozenBefore, frozen);
    const through = (await readFoldedThrough(redis, keys)) ?? 0;

    const dirty = await hoursToRecompute(redis, keys, 'recompute');
    const ctx = await context();
    const now = Date.now();
    for (const hour of Object.keys(dirty).map(Number).sort((a, b) => a - b)) {
      if (this.task.stopRequested) break;
      if (!this.recomputeDebounce.isDue(hour, dirty[String(hour)]!, now)) continue;
      if (hour < frozenBefore) {
        frozen(hour, 'recompute');
        await hourDone(redis, keys, 'dropped', hour);
        continue;
      }
      const started = performance.now();
      await rollupHour(ch, hour, await this.nextVersion(), ctx, through);
      // The recomputation included analytics: both marks are cleared.
      await hourDone(redis, keys, 'recompute', hour, dirty[String(hour)]!);
      this.recomputeDebounce.forget(hour);
      this.deps.onHour?.(performance.now() - started);
      done++;
    }

    const stale = await hoursToRecompute(redis, keys, 'analytics');
    for (const hour of Object.keys(stale).map(Number).sort((a, b) => a - b)) {
      if (this.task.stopRequested) break;
      if (!this.analyticsDebounce.isDue(hour, stale[String(hour)]!, now)) continue;
      await rollupAnalytics(ch, hour, await this.nextVersion(), ctx);
      await hourDone(redis, keys, 'analytics', hour, stale[String(hour)]!);
      this.analyticsDebounce.forget(hour);
      done++;
    }

    if (done > 0 && Date.now() - this.lastPrune > PRUNE_EVERY_MS) {
      this.lastPrune = Date.now();
      await pruneAnalyticsVersions(ch).catch((err: unknown) => log.warn({ err }, 'pruning old analytics versions failed'));
    }
    return done;
  }

  /**
   * Folds every pending hour's rows from the last folded sequence up to the watermark.
   * Hours of a period that started closing go to whole recomputation instead: only that
   * path splits on-time samples from late ones (adjustments).
   */
  private async fold(context: () => Promise<RollupContext>, frozenBefore: number, frozen: (hour: number, kind: string) => void): Promise<number> {
    const { redis, keys, ch } = this.deps;
    const recorded = await readFoldedThrough(redis, keys);
    const through = await advanceFoldWatermark(redis, keys);
    const from = recorded ?? 0;
    const pending = await pendingHours(redis, keys);
    const ctx = await context();
    let done = 0;
    if (through > from || recorded === undefined) {
      const started = performance.now();
      const toRecompute: number[] = [];
      const foldable: number[] = [];
      for (const hour of pending) {
        if (hour < frozenBefore) frozen(hour, 'fold');
        // Without a record of what was folded, only a whole recomputation is safe.
        else if (recorded === undefined || rollupPeriodParams(ctx.periods, hour).onTimeSeq !== UINT64_MAX) toRecompute.push(hour);
        else foldable.push(hour);
      }
      const { hours: folded, tooWide, rows } = await foldHours(ch, { hours: foldable, from, through }, await this.nextVersion());
      // Too many earlier copies to send (a batch re-sent whole): those hours are recomputed instead.
      toRecompute.push(...tooWide);
      await finishFoldRound(redis, keys, { through, toRecompute, folded });
      done += folded.length;
      if (rows > 0) this.deps.onFold?.(rows, performance.now() - started);
    } else await releaseFoldedHours(redis, keys, through);
    return done;
  }

  /**
   * Above every version written before, fleet-wide, whatever this host's clock says: from
   * the ledger's counter (domain/ledger.ts `nextRowVersion`), taken under the rollup lock.
   */
  private nextVersion(): Promise<number> {
    const { ch, redis, keys } = this.deps;
    return issueRowVersion(ch, redis, keys, (this.deps.clock ?? Date.now)());
  }
}
