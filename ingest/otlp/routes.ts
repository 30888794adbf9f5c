/**
 * POST /v1/metrics: OTLP/HTTP metrics export (ExportMetricsServiceRequest) in binary
 * protobuf or OTLP/JSON, optionally gzip-compressed, into the same acceptor as
 * POST /v1/samples: the producer role, the same rate limit, item validation, idempotency
 * (deterministic sample ids) and back-pressure.
 *
 * Answers, as the OTLP/HTTP specification asks, in the request's encoding:
 * - 200 ExportMetricsServiceResponse: `partial_success` unset when every data point was
 *   used, else `rejected_data_points` and an `error_message` naming the reasons (data that
 *   is valid OTLP but not billable is refused this way: retrying would not help);
 * - 400 google.rpc.Status: the body cannot be read (bad protobuf, JSON or gzip);
 * - 413: body (compressed or not) above MAX_BODY_BYTES, or more than OTLP_MAX_DATA_POINTS
 *   data points;
 * - 415: another Content-Type or Content-Encoding;
 * - 503 + Retry-After: back-pressure (exporters retry, honouring Retry-After).
 * 401/403 come from the shared key check in the API's JSON error shape.
 *
 * Delivery order: translate (moves the shared cumulative state on, in Redis: one round
 * trip) → accept in batches of at most MAX_BATCH_ITEMS → answer. A batch the acceptor cannot
 * take goes, with everything after it, to the pending samples (pending.ts) and is sent
 * before the next request's. Redis unavailable while translating: nothing moved, 503.
 */
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { KeyRing } from '../../lib/auth.js';
import type { Metrics } from '../../lib/metrics.js';
import type { RedisKeys } from '../../schemas/queues.js';
import type { SampleInput } from '../../schemas/sample.js';
import { BackpressureError, type SampleSink } from '../accept.js';
import { decodeJsonRequest, decodeProtobufRequest, encodeResponse, encodeStatus, loadOtlpDefinitions, OtlpDecodeError, TooManyDataPointsError, type OtlpEncoding } from './decode.js';
import { PendingSamples } from './pending.js';
import { Rejections } from './rejections.js';
import { SharedSeriesState } from './shared-state.js';
import { OtlpTranslator } from './translate.js';

const gunzipAsync = promisify(gunzip);

export const OTLP_METRICS_PATH = '/v1/metrics';
const PROTOBUF_TYPE = 'application/x-protobuf';
const JSON_TYPE = 'application/json';
/** Data points one request may carry: the OpenTelemetry Collector's batches are 8,192 by default. */
export const DEFAULT_MAX_DATA_POINTS = 50_000;

// gRPC status codes, which google.rpc.Status carries.
const INVALID_ARGUMENT = 3;
const RESOURCE_EXHAUSTED = 8;
const UNAVAILABLE = 14;

export interface OtlpRouteDeps {
  acceptor: SampleSink;
  keys: KeyRing;
  /** Where the cumulative state lives, shared by every ingest process. */
  redis: Redis;
  redisKeys: RedisKeys;
  /** MAX_BODY_BYTES: the largest body, compressed and after decompression. */
  bodyLimit: number;
  /** MAX_BATCH_ITEMS: samples per accepted batch. */
  maxBatchItems: number;
  maxDataPoints?: number;
  translator?: OtlpTranslator;
  pending?: PendingSamples;
  /** The process's /metrics series this route moves (the shared state's are read at scrape: state-metrics.ts). */
  metrics?: Pick<Metrics, 'otlpDataPoints' | 'otlpPendingSamples' | 'otlpPendingDropped'>;
  log?: Pick<Logger, 'warn' | 'debug'>;
}

export function registerOtlpRoutes(app: FastifyInstance, deps: OtlpRouteDeps): void {
  loadOtlpDefinitions(); // a broken vendored .proto stops start-up, not the first export
  const translator = deps.translator ?? new OtlpTranslator({ state: new SharedSeriesState(deps.redis, deps.redisKeys) });
  const pending = deps.pending ?? new PendingSamples();
  const maxDataPoints = deps.maxDataPoints ?? DEFAULT_MAX_DATA_POINTS;
  const metrics = deps.metrics;
  void app.register(async (scope) => {
    // Raw bytes for both types: decoding happens in the handler, so every refusal is
    // answered as a google.rpc.Status in the request's encoding.
    scope.removeContentTypeParser(JSON_TYPE);
    scope.addContentTypeParser([JSON_TYPE, PROTOBUF_TYPE], { parseAs: 'buffer', bodyLimit: deps.bodyLimit }, (_req, body, done) => done(null, body));

    scope.post(OTLP_METRICS_PATH, { preHandler: deps.keys.require('producer') }, async (req, reply) => {
      const type = String(req.headers['content-type'] ?? '').toLowerCase();
      const encoding: OtlpEncoding = type.startsWith(PROTOBUF_TYPE) ? 'protobuf' : 'json';
      const fail = (status: number, code: number, message: string) => sendOtlp(reply, encoding, status, encodeStatus(encoding, code, message));
      // Other types reach here through the server's own parsers (text/plain): not OTLP.
      if (!type.startsWith(PROTOBUF_TYPE) && !type.startsWith(JSON_TYPE)) return fail(415, INVALID_ARGUMENT, `Content-Type must be ${PROTOBUF_TYPE} or ${JSON_TYPE}`);

      const body = await inflate(req, deps.bodyLimit);
      if ('error' in body) return fail(body.status, body.status === 413 ? RESOURCE_EXHAUSTED : INVALID_ARGUMENT, body.error);
      let request;
      try {
        request = encoding === 'protobuf' ? decodeProtobufRequest(body.bytes, maxDataPoints) : decodeJsonRequest(body.bytes, maxDataPoints);
      } catch (err) {
        if (err instanceof OtlpDecodeError) return fail(400, INVALID_ARGUMENT, err.message);
        if (err instanceof TooManyDataPointsError) return fail(413, RESOURCE_EXHAUSTED, `${err.message}; send smaller batches`);
        throw err;
      }

      const translation = await translator.translate(request); // Redis down: the server's handler answers 503
      const rejections = translation.rejections;
      const held = pending.take();
      const items: SampleInput[] = [...held, ...translation.samples];
      for (let start = 0; start < items.length; start += deps.maxBatchItems) {
        const chunk = items.slice(start, start + deps.maxBatchItems);
        let result;
        try {
          result = await deps.acceptor.accept(chunk);
        } catch (err) {
          const dropped = pending.hold(items.slice(start));
          metrics?.otlpPendingSamples.set(pending.size());
          if (dropped > 0) {
            metrics?.otlpPendingDropped.inc(dropped);
            deps.log?.warn({ dropped }, 'OTLP: pending samples over their bound; the oldest were dropped');
          }
          if (err instanceof BackpressureError) {
            reply.header('Retry-After', String(err.retryAfterS));
            return fail(503, UNAVAILABLE, err.message);
          }
          throw err; // Redis down: the server's handler answers 503 with Retry-After
        }
        for (const r of result.rejected) {
          const i = start + r.index - held.length;
          const reason = r.errors.map((e) => `${e.path}: ${e.message}`).join(', ');
          if (i >= 0) rejections.add(`a sample for ${items[start + r.index]!.metric} was refused: ${reason}`, translation.pointsPerSample[i] ?? 1, 'refused');
          else deps.log?.warn({ reason }, 'OTLP: a pending sample was refused');
        }
      }
      metrics?.otlpPendingSamples.set(pending.size()); // what this request took is delivered
      const n = Math.min(rejections.count(), request.dataPoints);
      // Counted as answered: a request answered 503 is counted when its retry is answered.
      if (metrics) {
        metrics.otlpDataPoints.inc({ result: 'accepted' }, request.dataPoints - n);
        for (const [reason, points] of rejections.causes(n)) metrics.otlpDataPoints.inc({ result: 'rejected', reason }, points);
      }
      return sendOtlp(reply, encoding, 200, encodeResponse(encoding, n > 0 ? { rejectedDataPoints: n, errorMessage: describe(rejections, n) } : undefined));
    });
  });
}

function describe(rejections: Rejections, n: number): string {
  const message = rejections.message();
  // The count can exceed the request's points when one point is behind two refused
  // samples (a window cut at an hour); the answer never claims more than were sent.
  return n === rejections.count() ? message : message.replace(/^\d+ data points?/, `${n} data point${n === 1 ? '' : 's'}`);
}

function sendOtlp(reply: FastifyReply, encoding: OtlpEncoding, status: number, body: Buffer | string) {
  return reply
    .code(status)
    .type(encoding === 'protobuf' ? PROTOBUF_TYPE : JSON_TYPE)
    .send(body);
}

/** The body, gunzipped when it says so, never beyond the limit (a zip bomb stops there). */
async function inflate(req: FastifyRequest, limit: number): Promise<{ bytes: Buffer } | { error: string; status: number }> {
  const raw = req.body;
  if (!Buffer.isBuffer(raw)) return { error: 'the body is empty', status: 400 };
  const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return { bytes: raw };
  if (encoding !== 'gzip' && encoding !== 'x-gzip') return { error: `Content-Encoding "${encoding}" is not supported; send gzip or an uncompressed body`, status: 415 };
  try {
    // On the thread pool, not the event loop; maxOutputLength stops a bomb at the limit.
    return { bytes: await gunzipAsync(raw, { maxOutputLength: limit }) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return { error: `the decompressed body is larger than ${limit} bytes`, status: 413 };
    return { error: `the body is not valid gzip: ${(err as Error).message}`, status: 400 };
  }
}
