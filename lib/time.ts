/** Time helpers shared by ingest, workers and queries. Everything is UTC. */
import { z } from 'zod';

export const HOUR_MS = 3_600_000;

/**
 * The hour a sample is billed in, as epoch seconds. A window is (ts − interval_s, ts], so a
 * window ending exactly on the hour belongs to the hour before: hence `ts − 1 ms`. The hour
 * depends on the natural key alone, so every duplicate of a sample lands in the same hour.
 */
export function usageHourOf(tsMs: number): number {
  return Math.floor((tsMs - 1) / HOUR_MS) * 3600;
}

/**
 * The instants an API time bound may name. The floor is ingest's (LIMITS.minTsMs: no
 * usage is older), and it also keeps clear of small epoch values the engine will not bind
 * as a DateTime (it reads "0" or "3600" as a malformed date, and answered 500). The ceiling
 * is where ClickHouse DateTime ends (2106-02-07): a later bound cannot be bound at all.
 */
export const API_TIME_MIN_MS = Date.UTC(2000, 0, 1);
export const API_TIME_MAX_MS = Date.UTC(2106, 0, 1);

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[zZ]|[+-]\d{2}:?\d{2})$/;

/** Whether Y-M-D names a real day: Date.parse rolls 2026-02-30 over to March 2. */
function realDay(y: string, m: string, d: string): boolean {
  const t = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
  return t.getUTCFullYear() === Number(y) && t.getUTCMonth() === Number(m) - 1 && t.getUTCDate() === Number(d);
}

/**
 * Parses an API time bound: RFC 3339 with a time zone, a date (YYYY-MM-DD, midnight UTC)
 * or epoch ms (at most 15 digits, so it is an exact integer). Undefined when it names no
 * instant (2026-13-45 used to come back as NaN and reach the engine); the range is the
 * caller's rule (timeBoundSchema).
 */
export function parseTimeBound(raw: string): number | undefined {
  const date = DATE_ONLY.exec(raw);
  if (date) return realDay(date[1]!, date[2]!, date[3]!) ? Date.parse(`${raw}T00:00:00Z`) : undefined;
  if (/^\d{1,15}$/.test(raw)) return Number(raw);
  const full = RFC3339.exec(raw);
  if (!full || !realDay(full[1]!, full[2]!, full[3]!)) return undefined; // a time zone is required
  const ms = Date.parse(raw.replace(' ', 'T'));
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * A query parameter naming an instant, as zod: parsed by parseTimeBound, inside
 * [API_TIME_MIN_MS, API_TIME_MAX_MS), and on a whole hour when the data is hourly.
 * Repeated parameters (`from=a&from=b`, an array) are refused by name.
 */
export function timeBoundSchema(label: string, opts: { wholeHour?: boolean } = {}) {
  return z
    .string({ error: `${label} must be given once, as a single value` })
    .transform((raw, ctx) => {
      const ms = parseTimeBound(raw);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `${label} must be RFC 3339 with a time zone, YYYY-MM-DD, or epoch ms (not ${JSON.stringify(raw.slice(0, 40))})` });
        return z.NEVER;
      }
      if (ms < API_TIME_MIN_MS || ms >= API_TIME_MAX_MS) {
        ctx.addIssue({ code: 'custom', message: `${label} must be from ${toIso(API_TIME_MIN_MS)} up to ${toIso(API_TIME_MAX_MS)} (exclusive)` });
        return z.NEVER;
      }
      if (opts.wholeHour && ms % HOUR_MS !== 0) {
        ctx.addIssue({ code: 'custom', message: `${label} must fall on a whole hour: usage is aggregated hourly` });
        return z.NEVER;
      }
      return ms;
    });
}

export function startOfMonthUtc(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** `2026-11-29 07:00:00` → epoch ms; how ClickHouse prints DateTime columns. */
export function fromClickHouseDateTime(s: string): number {
  return Date.parse(`${s.replace(' ', 'T')}Z`);
}

export function toIso(ms: number): string {
  return new Date(ms).toISOString();
}
