/**
 * When a dirty hour is due for recomputation. Recomputing reads the whole hour, so an hour
 * still filling is recomputed once it has been quiet for `quietMs` (its dirty generation
 * unchanged), or once it has waited `maxDelayMs` in all so that a steady stream is still
 * aggregated: a bulk load then reads each hour about once instead of once per round.
 */
export class RollupDebounce {
  private readonly seen = new Map<number, { generation: string; firstSeenAt: number; changedAt: number }>();

  constructor(private readonly quietMs: number, private readonly maxDelayMs: number) {}

  isDue(hour: number, generation: string, now: number): boolean {
    const seen = this.seen.get(hour);
    if (!seen) {
      this.seen.set(hour, { generation, firstSeenAt: now, changedAt: now });
      return this.quietMs === 0;
    }
    if (seen.generation !== generation) Object.assign(seen, { generation, changedAt: now });
    return now - seen.changedAt >= this.quietMs || now - seen.firstSeenAt >= this.maxDelayMs;
  }

  /** After a recomputation: the hour starts afresh if it gets dirty again. */
  forget(hour: number): void {
    this.seen.delete(hour);
  }
}
