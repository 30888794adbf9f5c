/**
 * Rejected data points counted by reason, for `partial_success`: the count OTLP asks for
 * and an `error_message` naming the reasons, most frequent first, bounded in length.
 */
const MAX_REASONS_SHOWN = 10;
const MAX_REASON_CHARS = 300;

export class Rejections {
  private readonly byReason = new Map<string, number>();
  private total = 0;

  add(reason: string, points: number): void {
    if (points <= 0) return;
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
}
