/**
 * Samples of one target waiting for the sink. The counter state has already moved past
 * these windows, so dropping them would lose usage: they stay here until the sink accepts
 * or rejects them, and are retried after back-pressure or a sink failure. Retrying is safe
 * because sample ids are deterministic.
 *
 * The queue is bounded (`maxPending`); past it the oldest samples are dropped, counted and
 * logged as an error, never silently. It lives in memory: a process crash loses what is here.
 */
import { BackpressureError, BatchTooLargeError, type SampleSink } from '../accept.js';
import type { SampleInput } from '../../schemas/sample.js';
import { safeLog, type CollectorLogger } from './logger.js';

export interface OutboxOptions {
  sink: SampleSink;
  logger: CollectorLogger;
  /** Who the samples belong to, for logs. */
  source: string;
  maxBatchItems: number;
  maxPending: number;
}

export interface DeliveryCounters {
  accepted: number;
  rejected: number;
  dropped: number;
}

export type FlushResult = { ok: true } | { ok: false; retryAfterMs: number; reason: string };

const RETRY_AFTER_FAILURE_MS = 5_000;
const MAX_LOGGED_REJECTIONS = 3;

export class Outbox {
  private queue: SampleInput[] = [];
  private batchSize: number;
  private running: Promise<FlushResult> | undefined;
  readonly counters: DeliveryCounters = { accepted: 0, rejected: 0, dropped: 0 };

  constructor(private readonly opts: OutboxOptions) {
    this.batchSize = opts.maxBatchItems;
  }

  get pending(): number {
    return this.queue.length;
  }

  push(samples: readonly SampleInput[]): void {
    // A loop, not push(...samples): a long outage split into hours can exceed the argument limit.
    for (const s of samples) this.queue.push(s);
    const over = this.queue.length - this.opts.maxPending;
    if (over > 0) {
      this.queue.splice(0, over);
      this.counters.dropped += over;
      safeLog(this.opts.logger, 'error', { source: this.opts.source, dropped: over, pending: this.queue.length },
        'collector outbox full: oldest usage samples dropped (the sink has been unavailable too long)');
    }
  }

  /** Sends everything pending; concurrent calls share one run. */
  flush(): Promise<FlushResult> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(): Promise<FlushResult> {
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, this.batchSize);
      try {
        const result = await this.opts.sink.accept(batch);
        this.queue.splice(0, batch.length);
        this.counters.accepted += result.accepted;
        this.counters.rejected += result.rejected.length;
        if (result.rejected.length > 0) {
          // The wire format refused what a mapping produced: a mapping or exporter bug.
          // Log the reasons, not the samples (they carry account and resource ids).
          safeLog(this.opts.logger, 'error', {
            source: this.opts.source,
            rejected: result.rejected.length,
            examples: result.rejected.slice(0, MAX_LOGGED_REJECTIONS).map((r) => ({
              metric: batch[r.index]?.metric,
              errors: r.errors,
            })),
          }, 'collector samples rejected by validation');
        }
      } catch (err) {
        if (err instanceof BatchTooLargeError && this.batchSize > 1) {
          this.batchSize = Math.max(1, Math.floor(this.batchSize / 2));
          continue;
        }
        if (err instanceof BackpressureError) {
          return { ok: false, retryAfterMs: err.retryAfterS * 1000, reason: 'backpressure' };
        }
        safeLog(this.opts.logger, 'error', { source: this.opts.source, pending: this.queue.length, err: errorName(err) },
          'collector could not hand samples to the sink; will retry');
        return { ok: false, retryAfterMs: RETRY_AFTER_FAILURE_MS, reason: errorName(err) };
      }
    }
    return { ok: true };
  }
}

function errorName(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message.slice(0, 200)}` : 'unknown error';
}
