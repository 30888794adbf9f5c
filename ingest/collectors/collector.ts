/**
 * The pull collector: scrapes each target on its own schedule and feeds the resulting
 * usage samples to a SampleSink (the same validated, durable path as pushed samples).
 *
 * Per target, per slot: fetch → parse → map → usage windows → samples → outbox → sink.
 * Slots are multiples of the target's interval since the epoch, so window ends (and thus
 * sample ids) are the same whoever scrapes and however late the timer fires.
 *
 * Isolation: every target has its own timer, its own in-flight scrape and its own outbox.
 * A target that hangs is cut off by its timeout; one that answers garbage fails its own
 * scrape; neither delays another target, and no error escapes to crash the process. A
 * slot that comes while the previous scrape of the same target is still running is
 * skipped: the next scrape's window simply covers it.
 */
import type { SampleSink } from '../accept.js';
import { UsageTracker, type TrackerOptions } from './counters.js';
import { safeLog, type CollectorLogger } from './logger.js';
import { applyMapping, type UnmappedResource } from './mappings/apply.js';
import { mappingRef } from './mappings/schema.js';
import { Outbox } from './outbox.js';
import { parsePrometheusText, PromParseError } from './prometheus-text.js';
import { windowsToSamples, type WindowOwner } from './samples.js';
import { fetchExposition, ScrapeError } from './scrape.js';
import { gapSecondsOf, TargetStatusBook, type EventCounts, type GapSeconds, type TargetStatus } from './target-status.js';
import { displayUrl, type ResolvedTarget } from './targets.js';

export type { TargetHealth, TargetStatus } from './target-status.js';

export interface PullCollectorOptions {
  targets: readonly ResolvedTarget[];
  sink: SampleSink;
  logger: CollectorLogger;
  tracker?: TrackerOptions;
  /** Injected for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Injected for tests; defaults to Date.now. */
  now?: () => number;
  /** Largest exposition accepted (default 32 MiB). */
  maxBodyBytes?: number;
  /** Samples per sink.accept call (default 1000; keep it ≤ MAX_BATCH_ITEMS). */
  maxBatchItems?: number;
  /** Samples a target may hold while the sink is unavailable (default 100 000). */
  maxPendingPerTarget?: number;
}

export interface ScrapeReport {
  targetId: string;
  slotMs: number;
  ok: boolean;
  error?: ScrapeError;
  samples: number;
  resources: number;
  unmapped: UnmappedResource[];
  events: EventCounts;
  /** Seconds of missed scrapes this scrape bridged with held gauge readings, or left unbilled. */
  gapSeconds?: GapSeconds;
}

interface TargetRuntime {
  target: ResolvedTarget;
  mappingRef: string;
  outbox: Outbox;
  status: TargetStatusBook;
  timer?: NodeJS.Timeout;
  retryTimer?: NodeJS.Timeout;
  inFlight?: Promise<ScrapeReport>;
}

const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;

export class PullCollector {
  private readonly runtimes = new Map<string, TargetRuntime>();
  private readonly tracker: UsageTracker;
  private readonly now: () => number;
  private running = false;
  private abort = new AbortController();

  constructor(private readonly opts: PullCollectorOptions) {
    this.tracker = new UsageTracker(opts.tracker);
    this.now = opts.now ?? Date.now;
    for (const target of opts.targets) {
      if (this.runtimes.has(target.id)) throw new Error(`duplicate target id ${target.id}`);
      this.runtimes.set(target.id, {
        target,
        mappingRef: mappingRef(target.mappingDef),
        outbox: new Outbox({
          sink: opts.sink,
          logger: opts.logger,
          source: target.id,
          maxBatchItems: opts.maxBatchItems ?? 1000,
          maxPending: opts.maxPendingPerTarget ?? 100_000,
        }),
        status: new TargetStatusBook(target.id, displayUrl(target.url), mappingRef(target.mappingDef), opts.logger, this.now),
      });
    }
  }

  /** Scrapes every target now (a baseline) and then on each slot of its interval. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    for (const rt of this.runtimes.values()) {
      const iv = rt.target.interval_s * 1000;
      const slot = Math.floor(this.now() / iv) * iv;
      this.tick(rt, slot);
      this.schedule(rt, slot);
    }
    safeLog(this.opts.logger, 'info', { targets: this.runtimes.size }, 'pull collector started');
  }

  /**
   * Stops scheduling, aborts scrapes in flight and makes one last attempt to hand pending
   * samples to the sink, waiting at most `flushTimeoutMs`. What is still pending then is
   * lost with the process, and logged as such.
   */
  async stop(flushTimeoutMs = 5_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const rt of this.runtimes.values()) {
      clearTimeout(rt.timer);
      clearTimeout(rt.retryTimer);
    }
    this.abort.abort();
    await Promise.allSettled([...this.runtimes.values()].map((rt) => rt.inFlight));
    await withTimeout(Promise.allSettled([...this.runtimes.values()].map((rt) => rt.outbox.flush())), flushTimeoutMs);
    for (const rt of this.runtimes.values()) {
      if (rt.outbox.pending > 0) {
        safeLog(this.opts.logger, 'error', { target: rt.target.id, pending: rt.outbox.pending },
          'pull collector stopped with samples the sink never took; their usage is lost');
      }
    }
    safeLog(this.opts.logger, 'info', {}, 'pull collector stopped');
  }

  /**
   * Scrapes one target for one slot (default: the current one) and waits until its samples
   * are handed to the sink. For tests, backfills and manual checks; the schedule does the same.
   */
  async scrapeOnce(targetId: string, slotMs?: number): Promise<ScrapeReport> {
    const rt = this.runtimes.get(targetId);
    if (!rt) throw new Error(`unknown target ${targetId}`);
    const iv = rt.target.interval_s * 1000;
    while (rt.inFlight) await rt.inFlight;
    const report = await this.startScrape(rt, slotMs ?? Math.floor(this.now() / iv) * iv);
    await this.flushTarget(rt);
    return report;
  }

  status(): TargetStatus[] {
    return [...this.runtimes.values()].map((rt) => rt.status.snapshot(rt.outbox.counters, rt.outbox.pending));
  }

  private schedule(rt: TargetRuntime, afterSlot: number): void {
    if (!this.running) return;
    const iv = rt.target.interval_s * 1000;
    // From the later of now and the last slot: a timer firing a millisecond early must not
    // schedule the same slot twice.
    const next = (Math.floor(Math.max(this.now(), afterSlot) / iv) + 1) * iv;
    rt.timer = setTimeout(() => {
      this.schedule(rt, next);
      this.tick(rt, next);
    }, Math.max(0, next - this.now()));
    rt.timer.unref();
  }

  private tick(rt: TargetRuntime, slotMs: number): void {
    if (rt.inFlight) {
      rt.status.skippedSlot();
      return;
    }
    void this.startScrape(rt, slotMs).then(() => this.flushTarget(rt));
  }

  /** One scrape of a target at a time: the tracker's state for it must advance in order. */
  private startScrape(rt: TargetRuntime, slotMs: number): Promise<ScrapeReport> {
    const p = this.runScrape(rt, slotMs).finally(() => {
      rt.inFlight = undefined;
    });
    rt.inFlight = p;
    return p;
  }

  /** Never throws: every failure becomes the target's status and a report. */
  private async runScrape(rt: TargetRuntime, slotMs: number): Promise<ScrapeReport> {
    const { target } = rt;
    const started = Date.now();
    const report: ScrapeReport = { targetId: target.id, slotMs, ok: false, samples: 0, resources: 0, unmapped: [], events: {} };
    rt.status.started();
    try {
      const text = await fetchExposition(target.url, {
        timeoutMs: target.timeout_ms,
        maxBytes: this.opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
        signal: this.abort.signal,
        ...(this.opts.fetch ? { fetch: this.opts.fetch } : {}),
      });
      let families;
      try {
        families = parsePrometheusText(text);
      } catch (err) {
        if (err instanceof PromParseError) throw new ScrapeError('parse', `not the Prometheus text format: ${err.message}`);
        throw err;
      }
      const mapped = applyMapping(target.mappingDef, target, families);
      if (!target.mappingDef.resource.key_label && mapped.resources.length === 0) {
        // A one-resource mapping that finds nothing is pointed at the wrong exporter.
        throw new ScrapeError('mapping', `no series of mapping ${rt.mappingRef} in the answer`);
      }
      const owners = new Map<string, WindowOwner>();
      const readings = mapped.resources.flatMap((r) =>
        r.readings.map((reading) => {
          owners.set(reading.key, { identity: r.identity, metric: reading.metric });
          return reading;
        }),
      );
      const { windows, events } = this.tracker.observe(target.id, slotMs, readings, { intervalMs: target.interval_s * 1000 });
      const { samples, unrepresentable } = windowsToSamples({ mappingRef: rt.mappingRef, targetId: target.id }, owners, windows);
      rt.outbox.push(samples);

      for (const e of events) report.events[e.type] = (report.events[e.type] ?? 0) + 1;
      Object.assign(report, { ok: true, samples: samples.length, resources: mapped.resources.length, unmapped: mapped.unmapped, gapSeconds: gapSecondsOf(events) });
      rt.status.succeeded({ ...report, notes: mapped.notes, unrepresentable }, Date.now() - started);
    } catch (err) {
      const error = err instanceof ScrapeError ? err : new ScrapeError('internal', `internal error: ${String((err as Error)?.message ?? err).slice(0, 200)}`);
      report.error = error;
      rt.status.failed(error, Date.now() - started);
    }
    return report;
  }

  private async flushTarget(rt: TargetRuntime): Promise<void> {
    const result = await rt.outbox.flush();
    if (result.ok || !this.running || rt.retryTimer) return;
    rt.retryTimer = setTimeout(() => {
      rt.retryTimer = undefined;
      void this.flushTarget(rt);
    }, result.retryAfterMs);
    rt.retryTimer.unref();
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
