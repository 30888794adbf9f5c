/**
 * The cumulative-counter and gauge state OTLP ingest keeps between requests, bounded.
 *
 * One `UsageTracker` (ingest/collectors/counters.ts, the pull collectors' own) per OTLP
 * Resource, keyed by a hash of all its attributes: a restarted process usually gets a new
 * `service.instance.id`, hence a new scope that starts from a baseline, as a new scrape
 * target would. What each entry costs: per series its key (≈ 100–300 bytes of label text)
 * and a BigInt; per group a number. The bounds, and what breaking one does:
 *
 * - `maxSeriesPerScope` (default 5,000): a request giving one Resource more cumulative or
 *   gauge series than that is refused for those points (a reason in the answer). A scope
 *   whose state grew past it across requests (start times that keep changing leave old
 *   series behind until they age out) is dropped and starts again from a baseline.
 * - `maxSeries` (default 200,000, ≈ 60 MB at most): past it, the least recently seen
 *   scopes are dropped until it holds; each re-baselines when it comes back.
 * - `maxScopes` (default 20,000): the same, counted in scopes.
 * - Scopes not seen for the tracker's longest gap (7 days) are dropped: their state
 *   could not be used anyway (a comeback re-baselines).
 *
 * Dropping state never bills twice: it only loses the usage between a scope's last
 * request before the drop and its first after (the collectors' restart rule). In memory,
 * per process: with several ingest processes (INGEST_PROCESSES > 1, or replicas behind a
 * balancer) one Resource's cumulative exports may reach two of them, each with its own
 * baseline, and the time between their baselines is then billed by both. Use delta
 * temporality there (no state at all), or route each Resource to one process.
 */
import { UsageTracker, type TrackerOptions } from '../collectors/counters.js';

export interface SeriesStateOptions {
  tracker?: TrackerOptions;
  maxSeriesPerScope?: number;
  maxSeries?: number;
  maxScopes?: number;
}

interface ScopeEntry {
  tracker: UsageTracker;
  series: number;
  seenMs: number;
}

export type EvictionReason = 'series_limit' | 'scope_limit' | 'idle' | 'scope_series_limit';

export class SeriesState {
  readonly maxSeriesPerScope: number;
  private readonly maxSeries: number;
  private readonly maxScopes: number;
  private readonly idleMs: number;
  private readonly trackerOptions: TrackerOptions;
  /** Insertion order is recency: an entry is re-inserted whenever it is used. */
  private readonly scopes = new Map<string, ScopeEntry>();
  private totalSeries = 0;
  /** Scopes dropped so far, by why: for logs and /metrics. */
  readonly evictions: Record<EvictionReason, number> = { series_limit: 0, scope_limit: 0, idle: 0, scope_series_limit: 0 };

  constructor(opts: SeriesStateOptions = {}) {
    this.trackerOptions = opts.tracker ?? {};
    this.maxSeriesPerScope = opts.maxSeriesPerScope ?? 5_000;
    this.maxSeries = opts.maxSeries ?? 200_000;
    this.maxScopes = opts.maxScopes ?? 20_000;
    const gaps = this.trackerOptions;
    this.idleMs = Math.max(gaps.counterMaxGapS ?? 7 * 86_400, gaps.gaugeMaxGapS ?? 3_600) * 1000;
  }

  /** The tracker of a scope, created when new; marks it most recently used. */
  tracker(scope: string, nowMs: number): UsageTracker {
    this.dropIdle(nowMs);
    let entry = this.scopes.get(scope);
    if (entry) this.scopes.delete(scope);
    else entry = { tracker: new UsageTracker(this.trackerOptions), series: 0, seenMs: nowMs };
    entry.seenMs = nowMs;
    this.scopes.set(scope, entry);
    if (this.scopes.size > this.maxScopes) this.dropOldest('scope_limit', () => this.scopes.size > this.maxScopes, scope);
    return entry.tracker;
  }

  /** After observing: recounts the scope's series and enforces the bounds. */
  settle(scope: string): void {
    const entry = this.scopes.get(scope);
    if (!entry) return;
    const series = entry.tracker.size().series;
    this.totalSeries += series - entry.series;
    entry.series = series;
    if (series > this.maxSeriesPerScope) {
      this.drop(scope, entry);
      this.evictions.scope_series_limit++;
    }
    if (this.totalSeries > this.maxSeries) this.dropOldest('series_limit', () => this.totalSeries > this.maxSeries, scope);
  }

  size(): { scopes: number; series: number } {
    return { scopes: this.scopes.size, series: this.totalSeries };
  }

  private drop(scope: string, entry: ScopeEntry): void {
    this.scopes.delete(scope);
    this.totalSeries -= entry.series;
  }

  private dropOldest(reason: EvictionReason, over: () => boolean, keep: string): void {
    let n = 0;
    for (const [scope, entry] of this.scopes) {
      if (!over()) break;
      if (scope === keep) continue;
      this.drop(scope, entry);
      n++;
    }
    this.evictions[reason] += n;
  }

  private dropIdle(nowMs: number): void {
    let n = 0;
    for (const [scope, entry] of this.scopes) {
      if (nowMs - entry.seenMs <= this.idleMs) break; // recency order: the rest are newer
      this.drop(scope, entry);
      n++;
    }
    this.evictions.idle += n;
  }
}
