/**
 * Per-key rate limits (issue 11): `POST /v1/samples` and `POST /v1/metrics` (OTLP) in requests per second per key (one budget),
 * `/v1/analytics/*` in requests per minute per key. Counted by @fastify/rate-limit's Redis
 * store, so a limit holds across ingest processes; its counters live under KEY_PREFIX and
 * expire with their window.
 *
 * The check runs in onRequest, before the body is read or parsed: a throttled key costs
 * a hash of its secret and one Redis round trip, not a JSON parse. It is keyed by the
 * key's public id (never its secret); a request without a valid key passes through to the
 * route's own check, which answers 401.
 *
 * Redis down: the limiter fails closed with 503 + Retry-After. Ingest could not accept a
 * batch without Redis anyway, and a limiter that silently stopped limiting during an
 * outage is exactly when an overload would hurt most. The same gate answers 503 for ingest
 * when its limit is off (0), from the state of the pipeline's own connection.
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { KeyRing } from './auth.js';
import { sendError } from './http-errors.js';
import type { RedisHandle } from './redis.js';
import { connectionDown, REDIS_RETRY_AFTER_S, REDIS_UNAVAILABLE_MESSAGE } from './redis-unavailable.js';

export interface RateLimitOptions {
  keyRing: KeyRing;
  redis: RedisHandle;
  /** KEY_PREFIX: counters are `<prefix>:rate-limit:<scope>:<key id>`. */
  prefix: string;
  /** INGEST_REQUESTS_PER_S; 0 = off. */
  ingestPerS: number;
  /** ANALYTICS_REQUESTS_PER_MIN; 0 = off. */
  analyticsPerMin: number;
  log: Logger;
}

interface Scope {
  name: 'ingest' | 'analytics';
  max: number;
  windowMs: number;
  per: string;
  matches(route: RouteOptions): boolean;
}

const methods = (route: RouteOptions) => (Array.isArray(route.method) ? route.method : [route.method]);

/** Installs the limits; routes registered after this call get them. Returns the limiter's connection closer. */
export async function installRateLimits(app: FastifyInstance, o: RateLimitOptions): Promise<() => Promise<void>> {
  const scopes: Scope[] = [
    { name: 'ingest', max: o.ingestPerS, windowMs: 1000, per: 'second', matches: (r) => (r.url === '/v1/samples' || r.url === '/v1/metrics') && methods(r).includes('POST') },
    { name: 'analytics', max: o.analyticsPerMin, windowMs: 60_000, per: 'minute', matches: (r) => r.url.startsWith('/v1/analytics/') },
  ];
  const byName = new Map(scopes.map((s) => [s.name, s]));
  const scopeOfKey = (key: string) => byName.get(key.slice(0, key.indexOf(':')) as Scope['name'])!;

  // A connection of its own that fails at once while Redis is down (no offline queue),
  // so an outage answers 503 now instead of holding every request until Redis returns.
  const client = new Redis({
    ...(o.redis.options as RedisOptions),
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  });
  let warnedAt = 0;
  client.on('error', (err: Error) => {
    // Reconnect attempts fail every few hundred ms during an outage: one line per 10 s.
    if (Date.now() - warnedAt > 10_000) o.log.warn({ err: err.message }, 'rate-limit Redis connection error; answering 503 until it is back');
    warnedAt = Date.now();
  });
  await Promise.race([once(client, 'ready'), sleep(5000)]);

  const scopeOf = new WeakMap<FastifyRequest, Scope['name']>();
  await app.register(rateLimit, {
    global: false, // only the routes matched below
    redis: client,
    nameSpace: `${o.prefix}:rate-limit:`,
    skipOnError: false, // a store error reaches us: fail closed, never silently open
    keyGenerator: (req: FastifyRequest) => `${scopeOf.get(req)}:${req.apiKey?.id ?? ''}`,
    max: (_req: FastifyRequest, key: string) => scopeOfKey(key).max,
    timeWindow: (_req: FastifyRequest, key: string) => scopeOfKey(key).windowMs,
  });
  const limiter = app.createRateLimit();

  const gate = (scope: Scope) =>
    async function rateLimitGate(req: FastifyRequest, reply: FastifyReply) {
      const unavailable = () => {
        reply.header('Retry-After', String(REDIS_RETRY_AFTER_S));
        return sendError(reply, 503, 'redis_unavailable', REDIS_UNAVAILABLE_MESSAGE);
      };
      if (scope.name === 'ingest' && connectionDown(o.redis.client)) return unavailable();
      if (scope.max === 0) return;
      const key = o.keyRing.identify(req);
      if (!key) return; // the route's own check answers 401
      scopeOf.set(req, scope.name);
      let result: Awaited<ReturnType<typeof limiter>>;
      try {
        result = await limiter(req);
      } catch (err) {
        if (connectionDown(client)) return unavailable();
        throw err;
      }
      if (result.isAllowed) return;
      reply.header('RateLimit-Limit', String(result.max));
      reply.header('RateLimit-Remaining', String(result.remaining));
      if (!result.isExceeded) return;
      const retryAfterS = Math.max(1, result.ttlInSeconds);
      reply.header('Retry-After', String(retryAfterS));
      return sendError(
        reply,
        429,
        'rate_limited',
        `key ${key.id} may make ${result.max} ${scope.name} requests per ${scope.per}` +
          `${scope.name === 'ingest' ? ' (INGEST_REQUESTS_PER_S)' : ' (ANALYTICS_REQUESTS_PER_MIN)'}; retry in ${retryAfterS} s`,
      );
    };

  const hooks = new Map(scopes.map((s) => [s.name, gate(s)]));
  app.addHook('onRoute', (route) => {
    const scope = scopes.find((s) => s.matches(route));
    if (!scope || (scope.max === 0 && scope.name !== 'ingest')) return;
    const existing = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest];
    route.onRequest = [...existing, hooks.get(scope.name)!];
  });

  return async () => {
    await client.quit().catch(() => client.disconnect());
  };
}
