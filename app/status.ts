/**
 * GET /v1/status (any valid key): the pipeline's health as JSON, for the web console and
 * for anyone who would rather not parse /metrics. Read-only, and read from the same
 * sources /metrics and /readyz use: this process's ingest counters, the batch queue, the
 * delivery ledger, the quarantine and the pull collector; plus the newest hour in the
 * billing and analytics aggregates, which is what "fresh" means to a reader.
 *
 * Bounded whatever the callers do: one computation at a time, shared by every request
 * that arrives within STATUS_TTL_MS of it; the rate's history is a few dozen snapshots;
 * at most MAX_TARGETS pull targets are listed (the rest counted).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Counter } from 'prom-client';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { ledgerGauges } from '../domain/ledger.js';
import { quarantineStats } from '../domain/quarantine.js';
import type { PullCollector } from '../ingest/collectors/index.js';
import { KEY_ROLES } from '../schemas/config.js';
import type { RoleContext } from './context.js';

const STATUS_TTL_MS = 1000;
/** The ingest rate is averaged over about this long (shorter just after start). */
const RATE_WINDOW_MS = 60_000;
/** Snapshots for the rate are taken at most this often. */
const SNAPSHOT_EVERY_MS = 1000;
const MAX_TARGETS = 200;

export interface StatusDeps {
  ctx: Pick<RoleContext, 'redis' | 'keys' | 'metrics' | 'keyRing' | 'batchQueue' | 'config'>;
  ch?: ClickHouseClient;
  /** The pull collector, once the ingest role has started it. */
  collector: () => PullCollector | undefined;
  /**
   * The engine's process of a split (process-split.ts): what the separate ingest processes
   * accepted and rejected, added to this process's counts.
   */
  otherIngestCounts?: () => Promise<{ accepted: number; rejected: number }>;
  now?: () => number;
}

interface Snapshot {
  at: number;
  accepted: number;
  rejected: number;
  batches: number;
}

/**
 * Counters' increase per second over the last RATE_WINDOW_MS, from snapshots taken as
 * the status is asked for (no timer of its own). The first snapshot is the start, at zero,
 * so a rate is always defined; `window_s` says over how long it was measured.
 */
export class RateWindow {
  private readonly snaps: Snapshot[];

  constructor(start: Snapshot) {
    this.snaps = [start];
  }

  observe(now: Snapshot): { window_s: number; samples_per_s: number; rejected_per_s: number; batches_per_s: number } {
    // The newest snapshot at least a window old is the baseline; older ones are dropped.
    let base = 0;
    for (let i = 0; i < this.snaps.length; i++) if (this.snaps[i]!.at <= now.at - RATE_WINDOW_MS) base = i;
    this.snaps.splice(0, base);
    const from = this.snaps[0]!;
    if (now.at - this.snaps.at(-1)!.at >= SNAPSHOT_EVERY_MS) this.snaps.push(now);
    const s = Math.max(0.001, (now.at - from.at) / 1000);
    const per = (a: number, b: number) => Math.round((Math.max(0, a - b) / s) * 100) / 100;
    return {
      window_s: Math.round(s),
      samples_per_s: per(now.accepted, from.accepted),
      rejected_per_s: per(now.rejected, from.rejected),
      batches_per_s: per(now.batches, from.batches),
    };
  }

  get size(): number {
    return this.snaps.length;
  }
}

const latestSchema = z.object({ billing: z.string(), analytics: z.string() });

/** The newest hour in each aggregate, RFC 3339, or null while it is empty. */
async function latestHours(ch: ClickHouseClient): Promise<{ billing_hour: string | null; analytics_hour: string | null }> {
  // max() over an empty table is the epoch: reported as null. The key's min-max index
  // answers these without reading the columns.
  const [row] = await queryRows(
    ch,
    latestSchema,
    `SELECT toString((SELECT max(hour) FROM billing.usage_hourly)) AS billing,
            toString((SELECT max(hour) FROM analytics.fleet_usage_hourly_versions)) AS analytics`,
  );
  const iso = (s: string | undefined) => (!s || s.startsWith('1970-01-01') ? null : `${s.replace(' ', 'T')}Z`);
  return { billing_hour: iso(row?.billing), analytics_hour: iso(row?.analytics) };
}

const counterValue = async (c: Counter) => (await c.get()).values.reduce((a, v) => a + v.value, 0);

export function registerStatusRoute(app: FastifyInstance, deps: StatusDeps): void {
  const { ctx } = deps;
  const now = deps.now ?? Date.now;
  const redis = ctx.redis.client;
  const startedAt = now();
  let rate: RateWindow | undefined;
  let cached: { at: number; body: Promise<unknown> } | undefined;

  const compute = async () => {
    const at = now();
    const [ownAccepted, ownRejected, others, batchSeq, waiting, active, delayed, deadLetters, ledger, quarantine, latest] = await Promise.all([
      counterValue(ctx.metrics.samplesAccepted),
      counterValue(ctx.metrics.samplesRejected),
      deps.otherIngestCounts?.() ?? { accepted: 0, rejected: 0 },
      redis.get(ctx.keys.batchSeq).then(Number),
      ctx.batchQueue.getWaitingCount(),
      ctx.batchQueue.getActiveCount(),
      ctx.batchQueue.getDelayedCount(),
      ctx.batchQueue.getFailedCount(),
      ledgerGauges(redis, ctx.keys),
      quarantineStats(redis, ctx.keys),
      // A failing engine is reported, not a failed status: the rest still tells the story.
      deps.ch ? latestHours(deps.ch).catch((err: unknown) => ({ error: (err as Error).message.slice(0, 300) })) : undefined,
    ]);
    const [accepted, rejected] = [ownAccepted + others.accepted, ownRejected + others.rejected];
    const snap = { at, accepted, rejected, batches: batchSeq };
    // Batches are counted fleet-wide (Redis) from their number at start; samples per process.
    rate ??= new RateWindow({ at: startedAt, accepted: 0, rejected: 0, batches: batchSeq });
    const collector = deps.collector();
    const targets = collector?.status() ?? [];
    return {
      generated_at: new Date(at).toISOString(),
      role: ctx.config.ROLE,
      ingest: {
        // prom-client counters: this process's, and the split's ingest processes' when it has
        // them; with ROLE=ingest scaled out (server mode), each process its own.
        scope: deps.otherIngestCounts ? 'all ingest processes' : 'process',
        since: new Date(startedAt).toISOString(),
        samples_accepted: accepted,
        samples_rejected: rejected,
        batches_accepted_fleet: batchSeq,
        ...rate.observe(snap),
      },
      queue: { waiting, active, delayed },
      dead_letters: deadLetters,
      quarantine,
      freshness: {
        inflight_batches: ledger.inflight,
        fold_lag_batches: ledger.foldLag,
        dirty_hours: ledger.dirtyHours,
        ...(latest ?? {}),
      },
      collector: {
        configured: collector !== undefined,
        up: targets.filter((t) => t.health === 'up').length,
        down: targets.filter((t) => t.health === 'down').length,
        unknown: targets.filter((t) => t.health === 'unknown').length,
        // Never the URL: a producer key may read this, and hostnames are nobody's business.
        targets: targets.slice(0, MAX_TARGETS).map((t) => ({
          id: t.id,
          mapping: t.mapping,
          health: t.health,
          last_success: t.lastSuccessAt ? new Date(t.lastSuccessAt).toISOString() : null,
          last_duration_ms: t.lastDurationMs ?? null,
          scrapes: t.scrapes,
          failures: t.failures,
          samples_produced: t.samples.produced,
          ...(t.lastError ? { error: { code: t.lastError.code, message: t.lastError.message } } : {}),
        })),
        ...(targets.length > MAX_TARGETS ? { targets_not_listed: targets.length - MAX_TARGETS } : {}),
      },
    };
  };

  app.get('/v1/status', { preHandler: ctx.keyRing.require(...KEY_ROLES) }, async (req, reply) => {
    const t = now();
    if (!cached || t - cached.at >= STATUS_TTL_MS) {
      const computing = compute();
      cached = { at: t, body: computing };
      computing.catch(() => {
        if (cached?.body === computing) cached = undefined; // a failure is not served to the next caller
      });
    }
    const pending = cached.body;
    reply.header('cache-control', 'no-store');
    const body = (await pending) as Record<string, unknown>;
    // The caller's own key, by its public id: the console shows the views its role allows.
    return { ...body, key: { id: req.apiKey!.id, role: req.apiKey!.role } };
  });
}
