/** The Fastify instance every role serves: error shape, body parsing, health and metrics. */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { errorBody } from '../lib/http-errors.js';
import { isRedisUnavailable, REDIS_RETRY_AFTER_S, REDIS_UNAVAILABLE_MESSAGE } from '../lib/redis-unavailable.js';

export interface HttpOptions {
  log: Logger;
  bodyLimit: number;
  metrics: Registry;
  /** Each dependency's readiness check; all must pass for /readyz. */
  readiness: Record<string, () => Promise<unknown>>;
  /** Reported by /readyz without deciding it (e.g. pull targets: one exporter down is not us). */
  readinessInfo?: () => Record<string, unknown>;
  /** Refreshes gauges just before a scrape. */
  beforeScrape?: () => Promise<void>;
}

export function createHttpServer(opts: HttpOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.log as FastifyBaseLogger,
    bodyLimit: opts.bodyLimit,
    // The pipeline sits behind load balancers with their own timeouts; keep ours generous.
    requestTimeout: 120_000,
    // Account ids are up to 128 characters (LIMITS.accountIdLength) and the router counts
    // the percent-encoded path segment. One character is at most 4 UTF-8 bytes, 12 when
    // each byte is written %XX, so 128 × 12 = 1536 admits every id ingest accepts; the
    // default (100) answered 414 for ids of 101–128 characters, which could then be
    // neither exported nor erased. The route checks the decoded id against the real rule.
    maxParamLength: 1536,
  });

  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
    // Redis down is an outage to wait out, not a bug: 503 with Retry-After (nothing was
    // acknowledged, the client retries), never a 500.
    if (isRedisUnavailable(err)) {
      req.log.warn({ err: err.message }, 'Redis unavailable; answered 503');
      reply.header('Retry-After', String(REDIS_RETRY_AFTER_S));
      return reply.code(503).send(errorBody('redis_unavailable', REDIS_UNAVAILABLE_MESSAGE));
    }
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    const code = status === 413 ? 'body_too_large' : status === 415 ? 'unsupported_media_type' : status < 500 ? 'bad_request' : 'internal';
    // Client errors say what was wrong; server errors say nothing about internals.
    const message = status < 500 ? err.message : 'internal error; the request can be retried';
    return reply.code(status).send(errorBody(code, message));
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody('not_found', `no route ${req.method} ${req.url.split('?')[0]}`)));

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const checks: Record<string, string> = {};
    for (const [name, check] of Object.entries(opts.readiness)) {
      checks[name] = await check().then(
        () => 'ok',
        (err: unknown) => `failing: ${(err as Error).message}`,
      );
    }
    const ready = Object.values(checks).every((c) => c === 'ok');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks, ...opts.readinessInfo?.() });
  });
  app.get('/metrics', async (_req, reply) => {
    await opts.beforeScrape?.().catch(() => undefined); // a failing gauge never hides the rest
    return reply.type(opts.metrics.contentType).send(await opts.metrics.metrics());
  });
  return app;
}
