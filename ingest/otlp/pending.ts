/**
 * Samples computed from OTLP data that the acceptor could not take (back-pressure, Redis
 * down). A cumulative counter's window exists only once: the shared state (shared-state.ts)
 * has moved on, and the client's retry of the same request is `stale` in whichever ingest
 * process it lands. So the window waits here, in the process that computed it, and goes out
 * in front of that process's next request's samples (any client's; ids are deterministic,
 * so a copy is deduplicated by the pipeline).
 *
 * Bounded (default 10,000 samples, a few MB): beyond it the oldest are dropped and
 * counted, which under-bills and never double-bills. In memory: a process that exits with
 * samples here loses them, as a collector's outbox does (ingest/collectors/README.md).
 */
import type { SampleInput } from '../../schemas/sample.js';

export class PendingSamples {
  private items: SampleInput[] = [];
  /** Samples dropped at the bound so far: for logs and /metrics. */
  dropped = 0;

  constructor(private readonly max = 10_000) {}

  /** Everything held, removed: the caller puts back what it could not deliver. */
  take(): SampleInput[] {
    const out = this.items;
    this.items = [];
    return out;
  }

  /** Keeps samples for a later request; returns how many older ones the bound dropped. */
  hold(samples: readonly SampleInput[]): number {
    this.items.push(...samples);
    const over = this.items.length - this.max;
    if (over <= 0) return 0;
    this.items.splice(0, over);
    this.dropped += over;
    return over;
  }

  size(): number {
    return this.items.length;
  }
}
