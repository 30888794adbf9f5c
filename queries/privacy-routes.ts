/** The privacy team's API: access/portability export, erasure and its status, reinstatement, termination, the audit trail. */
import { Readable } from 'node:stream';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { KeyRing } from '../lib/auth.js';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { sendError } from '../lib/http-errors.js';
import { fromClickHouseDateTime, timeBoundSchema, toIso } from '../lib/time.js';
import type { ErasureJob, RedisKeys } from '../schemas/queues.js';
import { textField } from '../schemas/text.js';
import { erasureStatus, isBeingErased, requestErasure } from '../domain/erasure-requests.js';
import { reinstateAccount } from '../domain/erased-identifiers.js';
import { exportAccountCsv, exportAccountJson } from './account-export.js';
import { parseAccountParam, terminateAccount } from '../domain/accounts.js';
import { queryIssues } from './routes.js';

export interface PrivacyRouteDeps {
  ch: ClickHouseClient;
  redis: Redis;
  redisKeys: RedisKeys;
  keys: KeyRing;
  erasureQueue: Queue<ErasureJob>;
  accountRetentionMonths: number;
}

export const auditQuerySchema = z
  .object({
    from: timeBoundSchema('from').optional(),
    to: timeBoundSchema('to').optional(),
    key_id: textField('key_id', 128).optional(),
    limit: z
      .string({ error: 'limit must be given once' })
      .regex(/^\d{1,6}$/, 'limit must be a whole number from 1 to 10000')
      .transform(Number)
      .pipe(z.number().int().min(1, 'limit must be at least 1').max(10_000, 'limit must be at most 10000'))
      .default(1000),
  })
  .strict();

export const exportQuerySchema = z.object({ format: z.enum(['json', 'csv'], { error: 'format must be json or csv, given once' }).optional() }).strict();
const noQuerySchema = z.object({}).strict();

export function registerPrivacyRoutes(app: FastifyInstance, deps: PrivacyRouteDeps): void {
  app.get<{ Params: { account: string }; Querystring: unknown }>(
    '/v1/accounts/:account/export',
    { preHandler: deps.keys.require('privacy') },
    async (req, reply) => {
      const checked = parseAccountParam(req.params.account);
      if ('error' in checked) return sendError(reply, 400, 'invalid_account', checked.error);
      const { account } = checked;
      const q = exportQuerySchema.safeParse(req.query);
      if (!q.success) return sendError(reply, 400, 'invalid_query', queryIssues(q.error));
      const format = q.data.format ?? (req.headers.accept?.includes('text/csv') ? 'csv' : 'json');
      const body = Readable.from(format === 'csv' ? exportAccountCsv(deps.ch, account) : exportAccountJson(deps.ch, account));
      return reply
        .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8')
        .header('content-disposition', `attachment; filename="account-export.${format}"`)
        .send(body);
    },
  );

  app.delete<{ Params: { account: string } }>('/v1/accounts/:account', { preHandler: deps.keys.require('privacy') }, async (req, reply) => {
    const checked = parseAccountParam(req.params.account);
    if ('error' in checked) return sendError(reply, 400, 'invalid_account', checked.error);
    const { account } = checked;
    const requestId = await requestErasure(deps.redis, deps.redisKeys, deps.erasureQueue, account, 'request');
    return reply.code(202).send({ request_id: requestId, status: 'queued', status_url: `/v1/erasures/${requestId}` });
  });

  app.get<{ Params: { id: string }; Querystring: unknown }>('/v1/erasures/:id', { preHandler: deps.keys.require('privacy') }, async (req, reply) => {
    if (!z.uuid().safeParse(req.params.id).success) return sendError(reply, 400, 'invalid_request_id', 'erasure request ids are UUIDs');
    const q = noQuerySchema.safeParse(req.query);
    if (!q.success) return sendError(reply, 400, 'invalid_query', queryIssues(q.error));
    const status = await erasureStatus(deps.redis, deps.redisKeys, req.params.id);
    if (!status) return sendError(reply, 404, 'not_found', 'no such erasure request (statuses are kept 90 days)');
    return { request_id: req.params.id, ...status };
  });

  // After an erasure ingest refuses the account's samples (`account_erased`) so that a
  // forgotten agent cannot silently re-create it; the privacy team lifts that here.
  app.post<{ Params: { account: string }; Querystring: unknown }>(
    '/v1/accounts/:account/reinstate',
    { preHandler: deps.keys.require('privacy') },
    async (req, reply) => {
      const checked = parseAccountParam(req.params.account);
      if ('error' in checked) return sendError(reply, 400, 'invalid_account', checked.error);
      const q = noQuerySchema.safeParse(req.query);
      if (!q.success) return sendError(reply, 400, 'invalid_query', queryIssues(q.error));
      const { account } = checked;
      if (await isBeingErased(deps.redis, deps.redisKeys, account)) {
        return sendError(reply, 409, 'erasure_in_progress', 'the account is being erased; reinstate it once its erasure is done');
      }
      const expiry = await reinstateAccount(deps.redis, deps.redisKeys, account, Date.now());
      if (expiry === undefined) return sendError(reply, 404, 'not_erased', 'the account is not on the erased list (never erased, already reinstated, or its fingerprint expired): its samples are accepted');
      return {
        account,
        reinstated: true,
        was_refused_until: new Date(expiry).toISOString(),
        message: 'samples for the account are accepted again and billed from zero; the erased data stays erased',
      };
    },
  );

  app.post<{ Params: { account: string } }>(
    '/v1/accounts/:account/terminate',
    { preHandler: deps.keys.require('billing', 'privacy') },
    async (req, reply) => {
      const checked = parseAccountParam(req.params.account);
      if ('error' in checked) return sendError(reply, 400, 'invalid_account', checked.error);
      return terminateAccount(deps.ch, checked.account, Date.now(), deps.accountRetentionMonths);
    },
  );

  // Times as RFC 3339 with Z, like every other response (the engine writes "2026-11-30 01:33:16.370";
  // it is read as ts_text because an alias named ts would shadow the column in WHERE).
  const auditRowSchema = z
    .object({
      ts_text: z.string(),
      key_id: z.string(),
      role: z.string(),
      method: z.string(),
      route: z.string(),
      path: z.string(),
      status: z.coerce.number(),
      duration_ms: z.coerce.number(),
      request_id: z.string(),
    })
    .transform(({ ts_text, ...r }) => ({ ts: toIso(fromClickHouseDateTime(ts_text)), ...r }));
  app.get<{ Querystring: unknown }>('/v1/audit', { preHandler: deps.keys.require('privacy') }, async (req, reply) => {
    const q = auditQuerySchema.safeParse(req.query);
    if (!q.success) return sendError(reply, 400, 'invalid_query', queryIssues(q.error));
    const from = q.data.from ?? Date.now() - 24 * 3_600_000;
    const to = q.data.to ?? Date.now() + 60_000;
    if (from >= to) return sendError(reply, 400, 'invalid_query', 'from must be before to');
    const rows = await queryRows(
      deps.ch,
      auditRowSchema,
      `SELECT toString(ts) AS ts_text, key_id, role, method, route, path, status, duration_ms, request_id FROM audit.api_calls
       WHERE ts >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND ts < fromUnixTimestamp64Milli({to:Int64}, 'UTC')
         AND ({key:String} = '' OR key_id = {key:String})
       ORDER BY ts DESC LIMIT {limit:UInt32}`,
      { from, to, key: q.data.key_id ?? '', limit: q.data.limit },
    );
    return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), rows };
  });
}
