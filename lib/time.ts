/** Time helpers shared by ingest, workers and queries. Everything is UTC. */

export const HOUR_MS = 3_600_000;

/**
 * The hour a sample is billed in, as epoch seconds. A window is (ts − interval_s, ts], so a
 * window ending exactly on the hour belongs to the hour before: hence `ts − 1 ms`. The hour
 * depends on the natural key alone, so every duplicate of a sample lands in the same hour.
 */
export function usageHourOf(tsMs: number): number {
  return Math.floor((tsMs - 1) / HOUR_MS) * 3600;
}

/** Parses an API time bound: RFC 3339, a date (YYYY-MM-DD, midnight UTC) or epoch ms. */
export function parseTimeBound(raw: string): number | undefined {
  if (/^\d{4}-\d{2}-\d{2}$/.test(raw)) return Date.parse(`${raw}T00:00:00Z`);
  if (/^\d+$/.test(raw)) return Number(raw);
  if (!/[zZ]|[+-]\d{2}:?\d{2}$/.test(raw)) return undefined; // a time zone is required
  const ms = Date.parse(raw);
  return Number.isFinite(ms) ? ms : undefined;
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
