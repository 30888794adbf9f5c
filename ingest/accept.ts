/**
 * Turns a batch of untrusted items into one durable batch job. Every entry point for
 * samples (HTTP push, pull collectors, file import) goes through `BatchAcceptor.accept`,
 * so validation, ordering and durability are the same for all of them.
 */
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { parseSample, type FieldError, type NormalizedSample } from '../schemas/sample.js';
import type { Config } from '../schemas/config.js';
import type { BatchJob, RedisKeys } from '../schemas/queues.js';
import { claimSequence, release } from '../domain/ledger.js';
import { ERASING_CHECK_MS, erasureView } from '../domain/erasure-requests.js';
import { erasedAccountsAmong, FingerprintCache, type FingerprintKey } from '../domain/erased-identifiers.js';
import { encodeRawRow, RAW_ROW_FORMAT, rawRowOf } from '../schemas/raw-row.js';
import { usageHourOf } from '../lib/time.js';

export interface RejectedItem {
  index: number;
  /** Set when the item is refused for its account's state, not its fields: `account_erased`, `account_being_erased`. */
  code?: 'account_erased' | 'account_being_erased';
  errors: FieldError[];
}

export interface AcceptResult {
  accepted: number;
  rejected: RejectedItem[];
  /** Set when something was accepted: the job id, for tracing. */
  batchId?: string;
}

/** An item that could not even be decoded (a bad NDJSON line): rejected with its reason. */
export class UnreadableItem {
  constructor(readonly reason: string) {}
}

/** Thrown when the backlog is above its bound: the producer should retry later. */
export class BackpressureError extends Error {
  override name = 'BackpressureError';
  constructor(readonly retryAfterS: number) {
    super('the pipeline is behind; retry later');
  }
}

/** Thrown for a batch larger than the configured item limit. */
export class BatchTooLargeError extends Error {
  override name = 'BatchTooLargeError';
}

/** Anything that takes untrusted items and answers per item: what collectors feed. */
export interface SampleSink {
  accept(items: readonly unknown[]): Promise<AcceptResult>;
}

export interface AcceptorOptions {
  redis: Redis;
  queue: Queue<BatchJob>;
  keys: RedisKeys;
  maxBatchItems: number;
  maxQueuedBatches: number;
  /** RAW_RETENTION_DAYS: how old a sample may be and still be kept long enough to bill. */
  rawRetentionDays: number;
  /** Hook for metrics; an observer's failure never breaks the path it observes. */
  onAccepted?: (accepted: number, rejected: number) => void;
}

const BACKLOG_CHECK_MS = 250;

export class BatchAcceptor implements SampleSink {
  private backlog = { checkedAt: 0, waiting: 0 };
  private erasing: { checkedAt: number; accounts: Set<string>; fingerprintKey?: FingerprintKey } = { checkedAt: 0, accounts: new Set<string>() };
  private readonly fingerprints = new FingerprintCache();

  constructor(private readonly opts: AcceptorOptions) {}

  async accept(items: readonly unknown[], nowMs = Date.now()): Promise<AcceptResult> {
    if (items.length > this.opts.maxBatchItems) {
      throw new BatchTooLargeError(`a batch may hold at most ${this.opts.maxBatchItems} samples; this one has ${items.length}`);
    }
    await this.checkBacklog(nowMs);
    const { accounts: erasing, fingerprintKey } = await this.erasureView(nowMs);

    const valid: NormalizedSample[] = [];
    const rejected: RejectedItem[] = [];
    const validIndex: number[] = [];
    items.forEach((item, index) => {
      if (item instanceof UnreadableItem) {
        rejected.push({ index, errors: [{ path: '(item)', message: item.reason }] });
        return;
      }
      const r = parseSample(item, nowMs, { oldestTsMs: oldestBillableMs(nowMs, this.opts.rawRetentionDays) });
      if (!r.ok) rejected.push({ index, errors: r.errors });
      else if (erasing.has(r.sample.account_id)) {
        rejected.push({ index, code: 'account_being_erased', errors: [{ path: 'account_id', message: 'this account is being erased; its samples are refused' }] });
      } else {
        valid.push(r.sample);
        validIndex.push(index);
      }
    });
    if (fingerprintKey && valid.length > 0) await this.refuseErased(valid, validIndex, rejected, fingerprintKey, nowMs);
    if (valid.length === 0) {
      this.observe(0, rejected.length);
      return { accepted: 0, rejected };
    }

    // Delivery order on the ingest side:
    //   1. take a sequence number and record the batch as in flight, atomically
    //      (acceptance order decides which duplicate is first; in flight keeps `complete`
    //      false and holds a period close until the batch is written);
    //   2. add the job: once BullMQ has it, the batch is durable in Redis;
    //   3. only then answer 202.
    // A crash before 2 loses nothing acknowledged (no 202 was sent; the producer retries);
    // it may leave an in-flight entry without a job, which the reconciler removes.
    const { redis, keys, queue } = this.opts;
    const batchId = randomUUID();
    let earliestHour = Number.POSITIVE_INFINITY;
    for (const s of valid) earliestHour = Math.min(earliestHour, usageHourOf(s.ts_ms));
    const batchSeq = await claimSequence(redis, keys, batchId, earliestHour);
    try {
      await queue.add('batch', toBatchJob(batchId, batchSeq, nowMs, valid), { jobId: batchId });
    } catch (err) {
      await release(redis, keys, batchId).catch(() => undefined);
      throw err;
    }
    this.observe(valid.length, rejected.length);
    return { accepted: valid.length, rejected, batchId };
  }

  private async checkBacklog(nowMs: number): Promise<void> {
    // Asking Redis on every request would double its load; a quarter-second-old count is enough.
    if (nowMs - this.backlog.checkedAt > BACKLOG_CHECK_MS) {
      this.backlog = { checkedAt: nowMs, waiting: await this.opts.queue.getWaitingCount() };
    }
    if (this.backlog.waiting >= this.opts.maxQueuedBatches) throw new BackpressureError(2);
  }

  private async erasureView(nowMs: number): Promise<{ accounts: Set<string>; fingerprintKey?: FingerprintKey }> {
    if (nowMs - this.erasing.checkedAt > ERASING_CHECK_MS) {
      const view = await erasureView(this.opts.redis, this.opts.keys, nowMs);
      // The key never changes once made: keep it even if a later read came back without it.
      this.erasing = { checkedAt: nowMs, accounts: view.accounts, fingerprintKey: view.fingerprintKey ?? this.erasing.fingerprintKey };
    }
    return this.erasing;
  }

  /**
   * Erased accounts (domain/erased-identifiers.ts) are refused per item with
   * `account_erased`, never silently re-created: one ZMSCORE per batch over its distinct
   * accounts, live (no cache), so the moment an erasure is done its account is refused.
   */
  private async refuseErased(valid: NormalizedSample[], validIndex: number[], rejected: RejectedItem[], key: FingerprintKey, nowMs: number): Promise<void> {
    const erased = await erasedAccountsAmong(this.opts.redis, this.opts.keys, key, [...new Set(valid.map((s) => s.account_id))], nowMs, this.fingerprints);
    if (erased.size === 0) return;
    const kept: NormalizedSample[] = [];
    valid.forEach((s, i) => {
      const until = erased.get(s.account_id);
      if (until === undefined) return void kept.push(s);
      rejected.push({
        index: validIndex[i]!,
        code: 'account_erased',
        errors: [{ path: 'account_id', message: `this account was erased; its samples are refused until ${new Date(until).toISOString()} unless the privacy team reinstates it (POST /v1/accounts/:account/reinstate)` }],
      });
    });
    rejected.sort((a, b) => a.index - b.index);
    valid.splice(0, valid.length, ...kept);
  }

  private observe(accepted: number, rejected: number): void {
    try {
      this.opts.onAccepted?.(accepted, rejected);
    } catch {
      // metrics must never fail ingest
    }
  }
}

/** An acceptor with the limits of the configuration: what the ingest role and `import` use. */
export function acceptorFromConfig(
  config: Pick<Config, 'MAX_BATCH_ITEMS' | 'MAX_QUEUED_BATCHES' | 'RAW_RETENTION_DAYS'>,
  parts: Pick<AcceptorOptions, 'redis' | 'queue' | 'keys' | 'onAccepted'>,
): BatchAcceptor {
  return new BatchAcceptor({
    ...parts,
    maxBatchItems: config.MAX_BATCH_ITEMS,
    maxQueuedBatches: config.MAX_QUEUED_BATCHES,
    rawRetentionDays: config.RAW_RETENTION_DAYS,
  });
}

/**
 * The oldest window end worth accepting: a day inside the raw retention, so that the
 * sample's hour is written and rolled up long before the TTL could remove it.
 */
export function oldestBillableMs(nowMs: number, rawRetentionDays: number): number {
  return nowMs - (rawRetentionDays - 1) * 86_400_000;
}

export function toBatchJob(batchId: string, batchSeq: number, acceptedAtMs: number, samples: readonly NormalizedSample[]): BatchJob {
  const hours = new Set<number>();
  const accounts = new Set<string>();
  const lines: string[] = [];
  const batch = { batchId, batchSeq, acceptedAtMs };
  samples.forEach((s, item) => {
    const hour = usageHourOf(s.ts_ms);
    hours.add(hour);
    accounts.add(s.account_id);
    lines.push(encodeRawRow(rawRowOf(s, hour, batch, item)));
  });
  return {
    batchId,
    batchSeq,
    acceptedAtMs,
    rowFormat: RAW_ROW_FORMAT,
    rows: lines.join('\n') + '\n',
    rowCount: samples.length,
    hours: [...hours].sort((a, b) => a - b),
    accounts: [...accounts],
  };
}
