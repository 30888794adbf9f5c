/**
 * A bound on the billing and privacy requests in progress in this process: they all wait
 * for the API's one engine session (app/pipeline.ts), so without a bound a burst from one
 * client becomes an ever longer wait for every client, with each waiting request held in
 * memory meanwhile. Beyond API_MAX_IN_FLIGHT the answer is 503 `api_busy` with
 * Retry-After at once, before the key is even checked. Analytics have their own admission
 * (queries/sandbox/gate.ts) and rate limit, and ingest needs no engine.
 */
import type { FastifyInstance } from 'fastify';
import { errorBody } from '../lib/http-errors.js';

/** The paths of the engine-backed billing, privacy and status routes. */
const BOUNDED_PREFIXES = ['/v1/accounts/', '/v1/usage', '/v1/producers', '/v1/erasures/', '/v1/audit', '/v1/status'];

/** Whether a request path (or a route pattern) counts against API_MAX_IN_FLIGHT. */
export function isInFlightBounded(path: string): boolean {
  return BOUNDED_PREFIXES.some((p) => path === p || path.startsWith(p.endsWith('/') ? p : `${p}/`) || path.startsWith(`${p}?`));
}

export const API_BUSY_RETRY_AFTER_S = 1;

export function limitApiInFlight(app: FastifyInstance, max: number): { inFlight: () => number } {
  let inFlight = 0;
  app.addHook('onRequest', async (req, reply) => {
    if (!isInFlightBounded(req.url)) return;
    if (inFlight >= max) {
      return reply
        .code(503)
        .header('retry-after', String(API_BUSY_RETRY_AFTER_S))
        .send(errorBody('api_busy', `this process already has ${max} billing and privacy requests in progress (API_MAX_IN_FLIGHT); retry in ${API_BUSY_RETRY_AFTER_S} s`));
    }
    inFlight++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      inFlight--;
    };
    // 'close' comes after the response is sent, and also when the client leaves first.
    reply.raw.once('close', release);
    reply.raw.once('finish', release);
  });
  return { inFlight: () => inFlight };
}
