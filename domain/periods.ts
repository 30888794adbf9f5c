/**
 * Billing periods: UTC calendar months. A period is `open` until its end, `closing` during
 * the grace after it (and until its close has finished), then `closed`: its totals are
 * final and late samples become adjustments in a later period.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';

export type PeriodStatus = 'open' | 'closing' | 'closed';

export const UINT64_MAX = '18446744073709551615';

const stateSchema = z.object({
  period: z.string(), // YYYY-MM-DD, the first day
  status: z.enum(['closing', 'closed']),
  close_seq: z.coerce.number(),
  closed_at: z.string().nullable(),
  export_sha256: z.string(),
});
export type PeriodState = z.infer<typeof stateSchema>;

export async function loadPeriodStates(ch: ClickHouseClient): Promise<PeriodState[]> {
  return queryRows(ch, stateSchema, 'SELECT toString(period) AS period, status, close_seq, closed_at, export_sha256 FROM billing.periods FINAL ORDER BY period');
}

/**
 * Period states for hot paths (every usage request, every rollup round). They change a few
 * times a month, each time followed by the closer bumping `periodsVersion` in Redis, so a
 * reader reloads them only when that version moved; the age limit bounds staleness if a
 * closer died between writing a state and bumping the version.
 */
export class PeriodStateCache {
  private cached: { version: string; at: number; states: PeriodState[] } | undefined;

  constructor(
    private readonly ch: ClickHouseClient,
    private readonly redis: Redis,
    private readonly versionKey: string,
    private readonly maxAgeMs = 10_000,
  ) {}

  async get(): Promise<PeriodState[]> {
    const version = (await this.redis.get(this.versionKey)) ?? '0';
    const c = this.cached;
    if (c && c.version === version && Date.now() - c.at < this.maxAgeMs) return c.states;
    const states = await loadPeriodStates(this.ch);
    this.cached = { version, at: Date.now(), states };
    return states;
  }
}

/** `2026-11` → epoch ms of 2026-11-01T00:00Z; undefined when not a valid month. */
export function parsePeriod(label: string): number | undefined {
  const m = /^(\d{4})-(\d{2})$/.exec(label);
  if (!m) return undefined;
  const month = Number(m[2]);
  if (month < 1 || month > 12) return undefined;
  return Date.UTC(Number(m[1]), month - 1, 1);
}

export function periodOf(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

export function nextPeriod(periodMs: number): number {
  const d = new Date(periodMs);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** `2026-11-01` / epoch ms → `2026-11`. */
export function periodLabel(period: string | number): string {
  return (typeof period === 'number' ? new Date(period).toISOString() : period).slice(0, 7);
}

export const toDateString = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export function periodStatus(periodMs: number, nowMs: number, state: PeriodState | undefined): PeriodStatus {
  if (state?.status === 'closed') return 'closed';
  if (state?.status === 'closing' || nowMs >= nextPeriod(periodMs)) return 'closing';
  return 'open';
}

/**
 * What the rollup of one hour needs to split on-time usage from late adjustments: the
 * close_seq of the hour's own period, and every period that started closing, in order.
 */
export function rollupPeriodParams(states: readonly PeriodState[], hourS: number) {
  const own = toDateString(periodOf(hourS * 1000));
  const ownState = states.find((s) => s.period === own);
  const last = states.at(-1);
  return {
    onTimeSeq: ownState ? String(ownState.close_seq) : UINT64_MAX,
    closeSeqs: states.map((s) => s.close_seq),
    closePeriods: states.map((s) => s.period),
    nextOpenPeriod: last ? toDateString(nextPeriod(Date.parse(`${last.period}T00:00:00Z`))) : '1970-01-01',
  };
}
