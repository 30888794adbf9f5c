/**
 * Rejected data points counted by reason, for `partial_success`: the count OTLP asks for
 * and an `error_message` naming the reasons, most frequent first, bounded in length.
 * Each reason also has a cause from a small fixed set: the label of
 * `um_otlp_data_points_total{result="rejected"}` (a reason's text names metrics, so it
 * could never be a label). The causes (lib/metrics.ts OTLP_REJECTION_REASONS):
 *   unsupported_type   histograms, summaries, sums without temporality, non-monotonic deltas
 *   unmapped           no rule of the mapping reads the metric
 *   resource           the Resource cannot be billed: no account, resource id or region
 *   invalid_point      no time, a bad value or window, too many attributes, beyond 2^53
 *   out_of_time_range  too far in the future, or older than the shared state is kept
 *   duplicate          the same series and time twice in one request
 *   series_limit       more cumulative and gauge series in one Resource than are tracked
 *   refused            a translated sample the acceptor's validation refused
 */
import type { OTLP_REJECTION_REASONS } from '../../lib/metrics.js';

export type RejectionCause = (typeof OTLP_REJECTION_REASONS)[number];

const MAX_REASONS_SHOWN = 10;
const MAX_REASON_CHARS = 300;

export class Rejections {
  private readonly byReason = new Map<string, number>();
  private readonly byCause = new Map<RejectionCause, number>();
  private total = 0;

  add(reason: string, points: number, cause: RejectionCause): void {
    if (points <= 0) return;
    this.byCause.set(cause, (this.byCause.get(cause) ?? 0) + points);
    const r = reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS)}…` : reason;
    // Reasons are few (per metric, per rule); a hostile request's many distinct names are
    // folded into one line once the map is large, so the map itself stays bounded.
    const key = this.byReason.has(r) || this.byReason.size < 1000 ? r : 'other reasons';
    this.byReason.set(key, (this.byReason.get(key) ?? 0) + points);
    this.total += points;
  }

  count(): number {
    return this.total;
  }

  /** "N data points rejected: 3 × reason; 2 × reason; … (and K more reasons)". */
  message(): string {
    const sorted = [...this.byReason].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const shown = sorted.slice(0, MAX_REASONS_SHOWN).map(([r, n]) => `${n} × ${r}`);
    const more = sorted.length > MAX_REASONS_SHOWN ? ` (and ${sorted.length - MAX_REASONS_SHOWN} more reasons)` : '';
    return `${this.total} data point${this.total === 1 ? '' : 's'} rejected: ${shown.join('; ')}${more}`;
  }

  reasons(): ReadonlyMap<string, number> {
    return this.byReason;
  }

  /**
   * Points by cause, at most `limit` in all (the count can exceed the request's points when
   * one point is behind two refused samples): the excess is taken off the last causes.
   */
  causes(limit = Infinity): Map<RejectionCause, number> {
    const out = new Map<RejectionCause, number>();
    let left = limit;
    for (const [cause, n] of this.byCause) {
      const take = Math.min(n, left);
      if (take > 0) out.set(cause, take);
      left -= take;
    }
    return out;
  }
}
