/** The ingest role: POST /v1/samples, OTLP's POST /v1/metrics and the pull collectors, all through one acceptor. */
import type { FastifyInstance } from 'fastify';
import { acceptorFromConfig } from '../ingest/accept.js';
import { loadTargets, PullCollector, type TargetList } from '../ingest/collectors/index.js';
import { registerIngestRoutes } from '../ingest/routes.js';
import { registerOtlpRoutes } from '../ingest/otlp/routes.js';
import { registerQuarantineRoutes } from '../ingest/quarantine-routes.js';
import { DAY_MS, ProducerTracker } from '../lib/producers.js';
import type { RoleContext } from './context.js';

/** Returns the pull collector when targets are configured (a bad target list stops start-up). */
/**
 * The pull targets, read and validated before anything connects: a bad list stops start-up
 * with its field errors at once, not after Redis and every migration. Undefined: none.
 */
export async function loadConfiguredTargets(config: RoleContext['config']): Promise<TargetList['targets'] | undefined> {
  if (!config.COLLECTOR_TARGETS_FILE && !config.COLLECTOR_TARGETS) return undefined;
  return (await loadTargets({ file: config.COLLECTOR_TARGETS_FILE, inline: config.COLLECTOR_TARGETS })).targets;
}

export async function registerIngestRole(http: FastifyInstance, ctx: RoleContext, targets?: TargetList['targets']): Promise<PullCollector | undefined> {
  const { config, metrics, log } = ctx;
  const acceptor = acceptorFromConfig(config, {
    redis: ctx.redis.client,
    queue: ctx.batchQueue,
    keys: ctx.keys,
    onAccepted: (accepted, rejected) => {
      metrics.samplesAccepted.inc(accepted);
      metrics.samplesRejected.inc(rejected);
    },
  });
  const producers = new ProducerTracker(ctx.redis.client, ctx.keys, {
    maxTracked: config.PRODUCER_MAX_TRACKED,
    maxGapRanges: config.PRODUCER_MAX_GAP_RANGES,
    idleMs: config.PRODUCER_IDLE_DAYS * DAY_MS,
  });
  registerIngestRoutes(http, { acceptor, keys: ctx.keyRing, producers, bodyLimit: config.MAX_BODY_BYTES });
  registerOtlpRoutes(http, { acceptor, keys: ctx.keyRing, redis: ctx.redis.client, redisKeys: ctx.keys, bodyLimit: config.MAX_BODY_BYTES, maxBatchItems: config.MAX_BATCH_ITEMS, metrics, log });
  registerQuarantineRoutes(http, { keys: ctx.keyRing, redis: ctx.redis.client, redisKeys: ctx.keys, sink: acceptor });

  if (!targets) return undefined;
  const collector = new PullCollector({ targets, sink: acceptor, logger: log, maxBatchItems: Math.min(1000, config.MAX_BATCH_ITEMS) });
  collector.start();
  ctx.onClose('pull collector', () => collector.stop()); // flushes what it scraped into the acceptor first
  log.info({ targets: targets.length }, 'pull collectors started');
  return collector;
}
