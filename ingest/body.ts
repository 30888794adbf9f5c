/**
 * Decoding POST /v1/samples bodies: a JSON array, `{ "samples": [...] }`, or NDJSON (one
 * sample per line). A bad NDJSON line becomes an UnreadableItem, so it is reported at its
 * index and the good lines beside it are kept.
 */
import type { FastifyInstance } from 'fastify';
import { UnreadableItem } from './accept.js';

export const NDJSON_TYPES = ['application/x-ndjson', 'application/ndjson', 'application/jsonl'];

class NdjsonBody {
  constructor(readonly items: unknown[]) {}
}

export function registerNdjsonParser(app: FastifyInstance, bodyLimit: number): void {
  app.addContentTypeParser(NDJSON_TYPES, { parseAs: 'string', bodyLimit }, (_req, body, done) => {
    const items: unknown[] = [];
    const lines = String(body).split('\n');
    lines.forEach((line, i) => {
      const text = line.trim();
      if (text === '') return;
      try {
        items.push(JSON.parse(text));
      } catch (err) {
        items.push(new UnreadableItem(`line ${i + 1} is not valid JSON: ${(err as Error).message}`));
      }
    });
    done(null, new NdjsonBody(items));
  });
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
