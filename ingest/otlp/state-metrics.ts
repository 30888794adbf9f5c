/**
 * The OTLP shared cumulative state's size and evictions as /metrics series, read from Redis
 * (shared-state.ts `size()`: two ZCARDs and one HGETALL) when /metrics is scraped. The
 * eviction counts live in Redis, written by every ingest process; a prom-client counter only
 * goes up, so each scrape adds what Redis gained since the last one (a lower Redis count —
 * its keys deleted — is taken as the new base, never subtracted).
 */
import type { Metrics } from '../../lib/metrics.js';
import { OTLP_EVICTION_CAUSES } from '../../lib/metrics.js';
import type { SharedSeriesState } from './shared-state.js';

export function otlpStateMetrics(state: Pick<SharedSeriesState, 'size'>, metrics: Pick<Metrics, 'otlpStateFields' | 'otlpStateScopes' | 'otlpStateEvictions'>): () => Promise<void> {
  const seen = new Map<string, number>();
  return async () => {
    const size = await state.size();
    metrics.otlpStateFields.set(size.fields);
    metrics.otlpStateScopes.set(size.scopes);
    for (const cause of OTLP_EVICTION_CAUSES) {
      const now = size.evicted[cause] ?? 0;
      const before = seen.get(cause) ?? 0;
      if (now > before) metrics.otlpStateEvictions.inc({ cause }, now - before);
      seen.set(cause, now);
    }
  };
}
