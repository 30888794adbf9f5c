/**
 * Decoding POST /v1/samples bodies: a JSON array, `{ "samples": [...] }`, or NDJSON (one
 * sample per line), optionally gzip-compressed. Registered on the ingest routes' own scope,
 * so these rules apply to samples and nowhere else:
 *
 * - `Content-Encoding: gzip` is decompressed, and the body limit counts the decompressed
 *   bytes (a zip bomb stops at the limit); any other encoding gets 415.
 * - Bytes must be UTF-8: a malformed sequence would become U+FFFD, and two distinct ids
 *   would collapse into one and be deduplicated. A JSON body with one is refused (400);
 *   an NDJSON line with one is rejected at its index and the good lines are kept.
 * - JSON text goes through json-text.ts: bounded nesting, numbers kept exact.
 */
import { Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UnreadableItem } from './accept.js';
import { JsonTextError, parseJsonText } from './json-text.js';

export const NDJSON_TYPES = ['application/x-ndjson', 'application/ndjson', 'application/jsonl'];

class NdjsonBody {
  constructor(readonly items: unknown[]) {}
}

class BodyError extends Error {
  constructor(
    message: string,
    readonly statusCode: number,
  ) {
    super(message);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function registerSampleBodyParsers(scope: FastifyInstance, bodyLimit: number): void {
  scope.addHook('preParsing', async (req, _reply, payload) => decodeContentEncoding(req, payload, bodyLimit));

  scope.removeContentTypeParser('application/json');
  scope.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => {
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      return done(new BodyError('the body is not valid UTF-8', 400), undefined);
    }
    try {
      done(null, parseJsonText(text));
    } catch (err) {
      const reason = err instanceof JsonTextError ? err.message : `the body is not valid JSON: ${(err as Error).message}`;
      done(new BodyError(reason, 400), undefined);
    }
  });

  scope.addContentTypeParser(NDJSON_TYPES, { parseAs: 'buffer', bodyLimit }, (_req, body, done) => {
    done(null, new NdjsonBody(ndjsonItems(body as Buffer)));
  });
}

/** One item per non-blank line; a line that cannot be read is an UnreadableItem. */
function ndjsonItems(body: Buffer): unknown[] {
  const items: unknown[] = [];
  for (let start = 0, line = 1; start < body.length; line++) {
    let end = body.indexOf(10 /* \n */, start);
    if (end === -1) end = body.length;
    const bytes = body.subarray(start, end);
    start = end + 1;
    let text: string;
    try {
      text = utf8.decode(bytes).trim();
    } catch {
      items.push(new UnreadableItem(`line ${line} is not valid UTF-8`));
      continue;
    }
    if (text === '') continue;
    try {
      items.push(parseJsonText(text));
    } catch (err) {
      items.push(new UnreadableItem(err instanceof JsonTextError ? `line ${line}: ${err.message}` : `line ${line} is not valid JSON: ${(err as Error).message}`));
    }
  }
  return items;
}

type Payload = NodeJS.ReadableStream & { receivedEncodedLength?: number };

function decodeContentEncoding(req: FastifyRequest, payload: Payload, bodyLimit: number): Payload {
  const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return payload;
  if (encoding !== 'gzip' && encoding !== 'x-gzip') {
    throw new BodyError(`Content-Encoding "${encoding}" is not supported; send gzip or an uncompressed body`, 415);
  }
  const gunzip = createGunzip();
  let encoded = 0;
  let decoded = 0;
  // Stops decompressing at the limit: the rest of the request is read and dropped, so the
  // client still gets its 413 instead of a reset connection.
  const limited: Transform & { receivedEncodedLength?: number } = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      decoded += chunk.length;
      if (decoded <= bodyLimit) return callback(null, chunk);
      payload.unpipe(gunzip);
      gunzip.destroy();
      payload.resume();
      callback(new BodyError(`the decompressed body is larger than ${bodyLimit} bytes`, 413));
    },
  });
  // Fastify checks Content-Length against the encoded bytes it is told of.
  payload.on('data', (chunk: Buffer) => {
    encoded += chunk.length;
    limited.receivedEncodedLength = encoded;
  });
  gunzip.on('error', (err: Error) => limited.destroy(new BodyError(`the body is not valid gzip: ${err.message}`, 400)));
  payload.pipe(gunzip).pipe(limited);
  return limited;
}

export type DecodedBody = { items: unknown[] } | { error: string };

export function samplesFromBody(body: unknown): DecodedBody {
  if (body instanceof NdjsonBody) return { items: body.items };
  if (Array.isArray(body)) return { items: body };
  if (body !== null && typeof body === 'object' && 'samples' in body) {
    const samples = (body as { samples: unknown }).samples;
    if (Array.isArray(samples)) return { items: samples };
    return { error: '"samples" must be an array' };
  }
  return { error: 'the body must be a JSON array of samples, an object { "samples": [...] }, or NDJSON (application/x-ndjson)' };
}
