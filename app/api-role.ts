/** The API role: the read side for billing, privacy and analytics, with its audit trail. */
import type { FastifyInstance } from 'fastify';
import { AuditRecorder } from '../lib/audit.js';
import type { ClickHouseClient } from '../lib/clickhouse.js';
import { registerAnalyticsRoutes } from '../queries/analytics-routes.js';
import { registerExportRoutes } from '../queries/export-routes.js';
import { registerPrivacyRoutes } from '../queries/privacy-routes.js';
import { registerQueryRoutes } from '../queries/routes.js';
import { analyticsCredentials } from '../schemas/config.js';
import type { RoleContext } from './context.js';

/**
 * `reads`: the API's own engine session (every route's queries); `writes`: the pipeline's,
 * for the audit trail's inserts (app/pipeline.ts says why reads have a session apart).
 */
export function registerApiRole(http: FastifyInstance, ctx: RoleContext, sessions: { reads: ClickHouseClient; writes: ClickHouseClient }): void {
  const { config, keyRing: keys } = ctx;
  const redis = ctx.redis.client;
  const ch = sessions.reads;

  const audit = new AuditRecorder(sessions.writes, ctx.log);
  audit.register(http);
  audit.start();
  ctx.onClose('audit log', () => audit.stop()); // registered before HTTP's stop: the last calls are written too

  registerQueryRoutes(http, { ch, redis, redisKeys: ctx.keys, keys, producerIdleMs: ctx.config.PRODUCER_IDLE_DAYS * 86_400_000 });
  registerExportRoutes(http, { ch, redis, redisKeys: ctx.keys, keys });
  registerPrivacyRoutes(http, {
    ch,
    redis,
    redisKeys: ctx.keys,
    keys,
    erasureQueue: ctx.erasureQueue,
    accountRetentionMonths: config.ACCOUNT_RETENTION_MONTHS,
  });
  // Server mode: the read-only analytics user, never a fallback to CLICKHOUSE_USER (throws
  // without it; startPipeline has already checked this before anything started).
  const sandboxCredentials = analyticsCredentials(config);
  registerAnalyticsRoutes(http, { ch, keys, config, ...(sandboxCredentials ? { sandboxCredentials } : {}) });
}
