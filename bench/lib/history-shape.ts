import { HISTORY_METRICS } from './history-sql.js';

/**
 * The shape of the generated billing history (stage 5): one calendar month of a fleet that
 * grows by accounts, each with 2 VMs × the history's metrics (the five before gpu) reporting
 * every 5 minutes.
 */
export const SERIES_PER_ACCOUNT = 2 * HISTORY_METRICS.length;
export const STEP_S = 300;

/** The last full calendar month before `nowMs`. */
export function historyMonth(nowMs = Date.now()): { startMs: number; endMs: number; label: string } {
  const now = new Date(nowMs);
  const startMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1);
  const endMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  return { startMs, endMs, label: new Date(startMs).toISOString().slice(0, 7) };
}

export function samplesPerAccount(month: { startMs: number; endMs: number }): number {
  return SERIES_PER_ACCOUNT * ((month.endMs - month.startMs) / (STEP_S * 1000));
}
