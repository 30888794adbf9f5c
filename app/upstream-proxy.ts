/**
 * An ingest process started by the split (process-split.ts) serves the ingest routes
 * itself and forwards every other request, unchanged, to the engine's process on loopback:
 * producers, billing systems and planners keep one address (PORT) while HTTP parsing,
 * validation and enqueueing run off the engine's event loop.
 *
 * Written on node:http rather than taken from @fastify/reply-from because of one behaviour
 * the API depends on: a client that goes away must abort the forwarded request at once,
 * before any answer has come back, so that the engine's process cancels its ad-hoc query
 * (analytics-routes.ts); reply-from only notices once the answer starts. Bodies stream
 * through unparsed, hop-by-hop headers are dropped, and the engine's process unreachable
 * (restarting) is an outage to wait out: 503 with Retry-After.
 */
import http from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorBody } from '../lib/http-errors.js';

/** What a client waits before retrying while the engine's process is unreachable, s. */
export const UPSTREAM_RETRY_AFTER_S = 2;
/** Connections kept open to the engine's process (bounded; requests beyond them queue). */
const MAX_UPSTREAM_SOCKETS = 64;

/** RFC 9110 §7.6.1: meaningful for one connection only, never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

/**
 * Registers the catch-all forwarder. Routes registered on `app` win over it: the router
 * prefers a static or parametric path to a wildcard.
 */
export async function registerUpstreamProxy(app: FastifyInstance, upstreamUrl: string): Promise<void> {
  const upstream = new URL(upstreamUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_UPSTREAM_SOCKETS });
  app.addHook('onClose', async () => agent.destroy());

  const forward = (req: FastifyRequest, reply: FastifyReply) => {
    const unavailable = (detail: string) => {
      if (reply.sent || reply.raw.headersSent) return reply.raw.destroy();
      reply.header('retry-after', String(UPSTREAM_RETRY_AFTER_S));
      return reply.code(503).send(errorBody('engine_unavailable', `the process that serves this route is not reachable (${detail}); retry after ${UPSTREAM_RETRY_AFTER_S} s`));
    };
    const out = http.request({
      agent,
      hostname: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: { ...endToEnd(req.headers), 'x-forwarded-for': req.ip },
    });
    // The client gone before its answer is complete: nobody will read it, stop the work.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) out.destroy();
    });
    return new Promise<void>((resolve) => {
      out.once('error', (err: NodeJS.ErrnoException) => {
        if (!reply.raw.destroyed) void unavailable(err.code ?? err.message);
        resolve();
      });
      out.once('response', (res) => {
        reply.code(res.statusCode ?? 502).headers(endToEnd(res.headers));
        void reply.send(res);
        resolve();
      });
      // The body as the client sent it (gzip, NDJSON, anything), never parsed here.
      (req.body as NodeJS.ReadableStream | undefined)?.pipe(out) ?? out.end();
    });
  };

  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    // The engine's process logs these requests; here they would only double the log.
    scope.all('/', { logLevel: 'warn' }, forward);
    scope.all('/*', { logLevel: 'warn' }, forward);
  });
}

/** Readiness of the engine's process, for this process's /readyz. */
export function upstreamReadiness(upstreamUrl: string): () => Promise<void> {
  return async () => {
    const res = await fetch(new URL('/readyz', upstreamUrl), { signal: AbortSignal.timeout(2000) }).catch((err: unknown) => {
      throw new Error(`the engine's process does not answer (${(err as Error).message})`);
    });
    if (res.status !== 200) throw new Error(`the engine's process is not ready (HTTP ${res.status})`);
  };
}
