/** POST /v1/samples: per-item answers; 202 only once the batch is durable in Redis. */
import type { FastifyInstance } from 'fastify';
import type { KeyRing } from '../lib/auth.js';
import { sendError } from '../lib/http-errors.js';
import { BackpressureError, BatchTooLargeError, type BatchAcceptor, type RejectedItem } from './accept.js';
import { registerSampleBodyParsers, samplesFromBody } from './body.js';
import type { ProducerTracker } from '../lib/producers.js';

export interface IngestRouteDeps {
  acceptor: BatchAcceptor;
  keys: KeyRing;
  /** X-Producer-Id/-Seq bookkeeping, bounded per producer and in total. */
  producers: ProducerTracker;
  /** MAX_BODY_BYTES: the largest body, counted after decompression. */
  bodyLimit: number;
}

/**
 * Rejected items listed in a response at most: the rest are counted in `rejected_count`.
 * 10,000 invalid items once made a 22 MB answer; the first hundred say what is wrong.
 */
export const MAX_REJECTED_DETAILS = 100;

export function registerIngestRoutes(app: FastifyInstance, deps: IngestRouteDeps): void {
  // A scope of its own: the samples body rules (body.ts) apply to this route only.
  void app.register(async (scope) => {
    registerSampleBodyParsers(scope, deps.bodyLimit);
    registerSamplesRoute(scope, deps);
  });
}

function registerSamplesRoute(app: FastifyInstance, deps: IngestRouteDeps): void {
  app.post('/v1/samples', { preHandler: deps.keys.require('producer') }, async (req, reply) => {
    const producer = producerHeaders(req.headers);
    if ('error' in producer) return sendError(reply, 400, 'invalid_producer_headers', producer.error);
    if (producer.id !== undefined) {
      // Refused before any work: a new id beyond PRODUCER_MAX_TRACKED must not cost Redis memory.
      const admitted = await deps.producers.admit(producer.id);
      if (!admitted.ok) {
        reply.header('Retry-After', String(admitted.retryAfterS));
        return sendError(reply, 429, 'too_many_producers', admitted.message);
      }
    }
    const decoded = samplesFromBody(req.body);
    if ('error' in decoded) return sendError(reply, 400, 'unreadable_body', decoded.error);
    if (decoded.items.length === 0) return sendError(reply, 400, 'empty_batch', 'the batch holds no samples');
    try {
      const result = await deps.acceptor.accept(decoded.items);
      // Only a batch with accepted samples counts as received: a refused one leaves its
      // number missing (nothing of it will be billed), and refused input costs no Redis memory.
      if (producer.id !== undefined && result.accepted > 0) await deps.producers.record(producer.id, producer.seq);
      if (result.accepted === 0) {
        return sendError(reply, 400, 'no_valid_samples', 'no sample in the batch is valid; see details for each item', rejectedDetails(result.rejected));
      }
      return reply.code(202).send({ accepted: result.accepted, ...rejectedDetails(result.rejected), batch_id: result.batchId });
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

/** The first MAX_REJECTED_DETAILS rejected items, and how many there were in all. */
function rejectedDetails(rejected: readonly RejectedItem[]): { rejected: RejectedItem[]; rejected_count: number } {
  return { rejected: rejected.slice(0, MAX_REJECTED_DETAILS), rejected_count: rejected.length };
}

/** Optional batch numbering: X-Producer-Id and X-Producer-Seq, both or neither. */
function producerHeaders(headers: Record<string, string | string[] | undefined>): { id?: undefined } | { id: string; seq: number } | { error: string } {
  const id = headers['x-producer-id'];
  const seq = headers['x-producer-seq'];
  if (id === undefined && seq === undefined) return {};
  if (typeof id !== 'string' || !/^[A-Za-z0-9._:-]{1,128}$/.test(id)) {
    return { error: 'X-Producer-Id must be 1 to 128 letters, digits or . _ : - (and comes with X-Producer-Seq)' };
  }
  if (typeof seq !== 'string' || !/^\d{1,15}$/.test(seq)) return { error: 'X-Producer-Seq must be a whole number (and comes with X-Producer-Id)' };
  return { id, seq: Number(seq) };
}
