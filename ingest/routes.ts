/** POST /v1/samples: per-item answers; 202 only once the batch is durable in Redis. */
import type { FastifyInstance } from 'fastify';
import type { KeyRing } from '../lib/auth.js';
import { sendError } from '../lib/http-errors.js';
import { BackpressureError, BatchTooLargeError, type BatchAcceptor } from './accept.js';
import { samplesFromBody } from './body.js';

export function registerIngestRoutes(app: FastifyInstance, deps: { acceptor: BatchAcceptor; keys: KeyRing }): void {
  app.post('/v1/samples', { preHandler: deps.keys.require('producer') }, async (req, reply) => {
    const decoded = samplesFromBody(req.body);
    if ('error' in decoded) return sendError(reply, 400, 'unreadable_body', decoded.error);
    if (decoded.items.length === 0) return sendError(reply, 400, 'empty_batch', 'the batch holds no samples');
    try {
      const result = await deps.acceptor.accept(decoded.items);
      if (result.accepted === 0) {
        return sendError(reply, 400, 'no_valid_samples', 'no sample in the batch is valid; see details for each item', {
          rejected: result.rejected,
        });
      }
      return reply.code(202).send({ accepted: result.accepted, rejected: result.rejected, batch_id: result.batchId });
    } catch (err) {
      if (err instanceof BackpressureError) {
        reply.header('Retry-After', String(err.retryAfterS));
        return sendError(reply, 503, 'backpressure', err.message);
      }
      if (err instanceof BatchTooLargeError) return sendError(reply, 413, 'batch_too_large', err.message);
      throw err;
    }
  });
}
