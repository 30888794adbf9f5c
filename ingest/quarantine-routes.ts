/**
 * The quarantine over HTTP (billing key): rows the engine refused for good, apart from
 * their written batch (lib/quarantine.ts). Served by ingest processes, which can replay.
 *
 *   GET    /v1/quarantine?offset&limit     entries, oldest first, and the totals
 *   GET    /v1/quarantine/:id              one entry with its rows as samples
 *   POST   /v1/quarantine/:id/replay       send its rows through validation again
 *   DELETE /v1/quarantine/:id              discard it: its rows will never be billed
 */
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { KeyRing } from '../lib/auth.js';
import { sendError } from '../lib/http-errors.js';
import { getQuarantine, listQuarantine, quarantineStats, removeQuarantine, type QuarantineMeta } from '../domain/quarantine.js';
import type { RedisKeys } from '../schemas/queues.js';
import type { SampleSink } from './accept.js';
import { QuarantineNotFoundError, replayQuarantined, sampleOfRow } from './quarantine-replay.js';

export interface QuarantineRouteDeps {
  keys: KeyRing;
  redis: Redis;
  redisKeys: RedisKeys;
  sink: SampleSink;
}

export const pageSchema = z.object({
  offset: z.coerce.number({ error: 'offset must be a whole number' }).int('offset must be a whole number').min(0, 'offset must not be negative').max(1_000_000_000).default(0),
  limit: z.coerce.number({ error: 'limit must be a whole number' }).int('limit must be a whole number').min(1, 'limit must be at least 1').max(1000, 'limit must be at most 1000').default(100),
});
// Entry ids are batch ids (UUIDs); anything else cannot name one.
export const idSchema = z.uuid({ error: 'a quarantine id is the UUID of the batch its rows came from' });

export function registerQuarantineRoutes(app: FastifyInstance, deps: QuarantineRouteDeps): void {
  const billing = { preHandler: deps.keys.require('billing') };
  const { redis, redisKeys } = deps;

  app.get('/v1/quarantine', billing, async (req, reply) => {
    const page = pageSchema.safeParse(req.query);
    if (!page.success) return sendError(reply, 400, 'invalid_query', page.error.issues[0]!.message);
    const [entries, stats] = await Promise.all([listQuarantine(redis, redisKeys, page.data), quarantineStats(redis, redisKeys)]);
    return { total_entries: stats.entries, total_rows: stats.rows, offset: page.data.offset, entries: entries.map(view) };
  });

  app.get<{ Params: { id: string } }>('/v1/quarantine/:id', billing, async (req, reply) => {
    const id = idSchema.safeParse(req.params.id);
    if (!id.success) return sendError(reply, 400, 'invalid_id', id.error.issues[0]!.message);
    const entry = await getQuarantine(redis, redisKeys, id.data);
    if (!entry) return sendError(reply, 404, 'not_found', `nothing is quarantined under id ${id.data}`);
    const { rows, ...meta } = entry;
    return { ...view(meta), samples: rows.split('\n').filter(Boolean).map((line) => sampleOfRow(entry, line)) };
  });

  app.post<{ Params: { id: string } }>('/v1/quarantine/:id/replay', billing, async (req, reply) => {
    const id = idSchema.safeParse(req.params.id);
    if (!id.success) return sendError(reply, 400, 'invalid_id', id.error.issues[0]!.message);
    try {
      return await replayQuarantined(redis, redisKeys, deps.sink, id.data);
    } catch (err) {
      if (err instanceof QuarantineNotFoundError) return sendError(reply, 404, 'not_found', err.message);
      throw err;
    }
  });

  app.delete<{ Params: { id: string } }>('/v1/quarantine/:id', billing, async (req, reply) => {
    const id = idSchema.safeParse(req.params.id);
    if (!id.success) return sendError(reply, 400, 'invalid_id', id.error.issues[0]!.message);
    const entry = await getQuarantine(redis, redisKeys, id.data);
    if (!entry || !(await removeQuarantine(redis, redisKeys, id.data))) return sendError(reply, 404, 'not_found', `nothing is quarantined under id ${id.data}`);
    req.log.warn({ quarantineId: id.data, rows: entry.rowCount }, 'quarantined rows discarded: they will never be billed');
    return { id: id.data, discarded: entry.rowCount };
  });
}

/** An entry as the API shows it: times in RFC 3339. */
function view(meta: QuarantineMeta) {
  return {
    id: meta.id,
    batch_seq: meta.batchSeq,
    accepted_at: new Date(meta.acceptedAtMs).toISOString(),
    first_seen: new Date(meta.firstSeenMs).toISOString(),
    reason: meta.reason,
    rows: meta.rowCount,
    accounts: Object.entries(meta.accounts).map(([account, hours]) => ({ account, hours: hours.map((h) => new Date(h * 1000).toISOString()) })),
  };
}
