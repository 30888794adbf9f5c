/** The Fastify instance every role serves: error shape, body parsing, health and metrics. */
import type { Socket } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { errorBody, type ApiErrorBody } from '../lib/http-errors.js';
import { registerApiReference } from './api-reference.js';
import { registerConsole } from './console-routes.js';
import { isRedisUnavailable, REDIS_RETRY_AFTER_S, REDIS_UNAVAILABLE_MESSAGE } from '../lib/redis-unavailable.js';

export interface HttpOptions {
  log: Logger;
  bodyLimit: number;
  /**
   * What /metrics serves: this process's registry, or one that adds the separate ingest
   * processes' series (process-split.ts). Absent: /metrics is not this process's to serve
   * (an ingest process of the split forwards it to the engine's process).
   */
  metrics?: Pick<Registry, 'contentType' | 'metrics'>;
  /** Each dependency's readiness check; all must pass for /readyz. */
  readiness: Record<string, () => Promise<unknown>>;
  /** Reported by /readyz without deciding it (e.g. pull targets: one exporter down is not us). */
  readinessInfo?: () => Record<string, unknown>;
  /** Refreshes gauges just before a scrape. */
  beforeScrape?: () => Promise<void>;
}

/** The router's own refusals (a path it cannot decode or route) in the API's error shape. */
function frameworkErrorBody(err: FastifyError): [number, ApiErrorBody] {
  if (err.code === 'FST_ERR_BAD_URL') return [400, errorBody('invalid_path', 'the path is not valid percent-encoded UTF-8')];
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return [414, errorBody('uri_too_long', 'a path segment is longer than 2048 characters (account ids are at most 128 characters)')];
  const status = err.statusCode ?? 500;
  return status >= 400 && status < 500 ? [status, errorBody('bad_request', err.message)] : [500, errorBody('internal', 'internal error; the request can be retried')];
}

export function createHttpServer(opts: HttpOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.log as FastifyBaseLogger,
    bodyLimit: opts.bodyLimit,
    // The pipeline sits behind load balancers with their own timeouts; keep ours generous.
    requestTimeout: 120_000,
    // Account ids are up to 128 characters (LIMITS.accountIdLength, counted in code points)
    // and the router measures the percent-encoded path segment: a character is at most 4
    // UTF-8 bytes, 12 once each byte is written %XX, so a valid id is at most 128 × 12 =
    // 1536. The default (100) answered 414 for ids of 101–128 characters, which could then
    // be neither exported nor erased. 2048 leaves room for an id a little too long to get
    // the route's specific 400 (the route checks the decoded id against the real rule).
    routerOptions: { maxParamLength: 2048 },
    // What the router refuses before any route runs gets the API's error shape too (it
    // answered Fastify's own {error:"Bad Request",…}, echoing the whole path).
    frameworkErrors: (err, _req, reply) => {
      const [status, body] = frameworkErrorBody(err);
      return (reply as unknown as FastifyReply).code(status).send(body);
    },
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

  closeSilentConnectionsOnClose(app);

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
  const metrics = opts.metrics;
  if (metrics) {
    app.get('/metrics', async (_req, reply) => {
      await opts.beforeScrape?.().catch(() => undefined); // a failing gauge never hides the rest
      return reply.type(metrics.contentType).send(await metrics.metrics());
    });
  }
  // The web console (static files under its own Content-Security-Policy; console-routes.ts).
  registerConsole(app);
  // GET /openapi.json and the reference page at /docs/api (api-reference.ts).
  registerApiReference(app);
  return app;
}

/**
 * On close, drops the connections on which no request has begun, so they cannot hold the
 * server's close (and with it the pipeline's stop) open.
 *
 * Why: a client whose request is abandoned (the point of the sandbox's cancellation, or any
 * client timeout) may open a fresh connection at once and leave it unused: undici, Node's
 * fetch, does so when an aborted request's socket closes. Node 20's server.close() reaps
 * idle keep-alive connections but not one that never sent a byte (nodejs/node#63452, fixed
 * in later Node), so the close waited until the client dropped it itself: undici keeps an
 * unused connection for the server's advertised keep-alive (72 s) less 2 s. Such a
 * connection carries no request, so closing it loses nothing; connections with a request
 * under way are left to finish.
 */
function closeSilentConnectionsOnClose(app: FastifyInstance): void {
  const open = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  const reap = () => {
    for (const socket of open) if (socket.bytesRead === 0) socket.destroy();
  };
  app.addHook('preClose', (done) => {
    reap();
    // Again once server.close() has stopped accepting: one may have arrived meanwhile.
    setImmediate(reap);
    done();
  });
}
