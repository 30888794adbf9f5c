/**
 * One target's health and counters, and the log lines that go with changes to them. Kept
 * apart from the scheduling in collector.ts so what an operator sees (status, logs) is
 * decided in one place. Logs name the target and the failure kind, never raw answers,
 * query strings or account ids.
 */
import type { TrackerEvent } from './counters.js';
import { safeLog, type CollectorLogger } from './logger.js';
import type { UnmappedResource } from './mappings/apply.js';
import type { DeliveryCounters } from './outbox.js';
import type { ScrapeError, ScrapeErrorCode } from './scrape.js';

export type TargetHealth = 'unknown' | 'up' | 'down';

/** One target's state, for readiness, /metrics and operators. */
export interface TargetStatus {
  id: string;
  /** Scheme, host and path only: a query string may carry a token. */
  url: string;
  mapping: string;
  health: TargetHealth;
  lastScrapeAt?: number;
  lastSuccessAt?: number;
  lastDurationMs?: number;
  lastError?: { code: ScrapeErrorCode; message: string; at: number };
  consecutiveFailures: number;
  scrapes: number;
  failures: number;
  /** Slots skipped because the previous scrape of this target was still running. */
  skippedSlots: number;
  /** Resources mapped / not mappable in the last successful scrape. */
  resources: number;
  unmapped: number;
  counterResets: number;
  invalidReadings: number;
  unfilledGaps: number;
  /**
   * Seconds of missed scrapes since start: `filled` ones were bridged by holding gauge
   * readings (those samples say `estimated: "held"`), `unfilled` ones were not billed.
   */
  gapSeconds: GapSeconds;
  samples: DeliveryCounters & { produced: number; pending: number };
}

export type EventCounts = Partial<Record<TrackerEvent['type'], number>>;

export interface GapSeconds {
  filled: number;
  unfilled: number;
}

/**
 * A scrape's gap seconds from its tracker events. Every group of a target shares its
 * scrape schedule, so one missed stretch shows in each group: the target's figure is the
 * longest of its groups', not their sum.
 */
export function gapSecondsOf(events: readonly TrackerEvent[]): GapSeconds {
  const out: GapSeconds = { filled: 0, unfilled: 0 };
  for (const e of events) {
    if (e.type === 'held') out.filled = Math.max(out.filled, e.heldS);
    else if (e.type === 'gap_not_filled') out.unfilled = Math.max(out.unfilled, e.gapS);
  }
  return out;
}

export interface ScrapeSuccess {
  resources: number;
  unmapped: readonly UnmappedResource[];
  samples: number;
  events: EventCounts;
  gapSeconds?: GapSeconds;
  notes: readonly string[];
  /** Windows too large to write exactly on the wire, skipped. */
  unrepresentable: number;
}

const LOG_EVERY_NTH_FAILURE = 10;

export class TargetStatusBook {
  private readonly s: Omit<TargetStatus, 'samples' | 'gapSeconds'> & { produced: number };
  private readonly gaps: GapSeconds = { filled: 0, unfilled: 0 };
  private readonly loggedNotes = new Set<string>();

  constructor(
    id: string,
    url: string,
    mapping: string,
    private readonly logger: CollectorLogger,
    private readonly now: () => number,
  ) {
    this.s = {
      id, url, mapping, health: 'unknown', consecutiveFailures: 0, scrapes: 0, failures: 0, skippedSlots: 0,
      resources: 0, unmapped: 0, counterResets: 0, invalidReadings: 0, unfilledGaps: 0, produced: 0,
    };
  }

  started(): void {
    this.s.scrapes++;
    this.s.lastScrapeAt = this.now();
  }

  skippedSlot(): void {
    this.s.skippedSlots++;
  }

  succeeded(r: ScrapeSuccess, durationMs: number): void {
    const s = this.s;
    if (s.health === 'down') this.log('info', { after_failures: s.consecutiveFailures }, 'scrape target is back');
    if (r.unmapped.length > 0 && r.unmapped.length !== s.unmapped) {
      this.log('warn', { unmapped: r.unmapped.length, examples: r.unmapped.slice(0, 3) }, 'resources without account or id are not billed');
    }
    for (const note of r.notes) {
      if (!this.loggedNotes.has(note)) this.log('warn', { note }, 'mapping note');
      this.loggedNotes.add(note);
    }
    const ev = r.events;
    if (ev.reset) this.log('info', { series: ev.reset }, 'counter reset: usage since the restart is billed');
    if (ev.invalid) this.log('warn', { readings: ev.invalid }, 'invalid readings skipped (NaN, infinite or negative)');
    if (ev.gap_not_filled) this.log('warn', { groups: ev.gap_not_filled, gap_s: r.gapSeconds?.unfilled }, 'gap too long to fill: those groups re-baselined');
    if (ev.held) this.log('info', { groups: ev.held, held_s: r.gapSeconds?.filled }, 'missed scrapes filled by holding gauge readings: those samples are marked estimated=held');
    if (r.unrepresentable > 0) this.log('warn', { windows: r.unrepresentable }, 'usage windows too large to send exactly were skipped');
    s.health = 'up';
    s.lastSuccessAt = this.now();
    s.lastDurationMs = durationMs;
    s.consecutiveFailures = 0;
    s.resources = r.resources;
    s.unmapped = r.unmapped.length;
    s.counterResets += ev.reset ?? 0;
    s.invalidReadings += ev.invalid ?? 0;
    s.unfilledGaps += ev.gap_not_filled ?? 0;
    this.gaps.filled += r.gapSeconds?.filled ?? 0;
    this.gaps.unfilled += r.gapSeconds?.unfilled ?? 0;
    s.produced += r.samples;
  }

  failed(error: ScrapeError, durationMs: number): void {
    if (error.code === 'aborted') return; // the collector is stopping: not the target's fault
    const s = this.s;
    const wasDown = s.health === 'down';
    s.failures++;
    s.consecutiveFailures++;
    s.lastDurationMs = durationMs;
    s.lastError = { code: error.code, message: error.message, at: this.now() };
    s.health = 'down';
    // On the way down, then every Nth failure: a dead target scraped every second must
    // not flood the log.
    if (!wasDown || s.consecutiveFailures % LOG_EVERY_NTH_FAILURE === 0) {
      this.log('warn', { url: s.url, code: error.code, error: error.message, consecutive_failures: s.consecutiveFailures }, 'scrape failed');
    }
  }

  snapshot(delivery: DeliveryCounters, pending: number): TargetStatus {
    const { produced, ...rest } = this.s;
    return { ...rest, ...(rest.lastError ? { lastError: { ...rest.lastError } } : {}), gapSeconds: { ...this.gaps }, samples: { produced, ...delivery, pending } };
  }

  private log(level: 'info' | 'warn', fields: Record<string, unknown>, msg: string): void {
    safeLog(this.logger, level, { target: this.s.id, ...fields }, msg);
  }
}
