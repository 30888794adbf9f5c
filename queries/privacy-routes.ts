/** The privacy team's API: access/portability export, erasure, termination, the audit trail. */
import { Readable } from 'node:stream';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { KeyRing } from '../lib/auth.js';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { sendError } from '../lib/http-errors.js';
import { parseTimeBound } from '../lib/time.js';
import type { ErasureJob, RedisKeys } from '../schemas/queues.js';
import { LIMITS } from '../schemas/sample.js';
import { erasureStatus, requestErasure } from '../workers/erasure.js';
import { exportAccountCsv, exportAccountJson } from './account-export.js';
import { terminateAccount } from './accounts.js';

export interface PrivacyRouteDeps {
  ch: ClickHouseClient;
  redis: Redis;
  redisKeys: RedisKeys;
  keys: KeyRing;
  erasureQueue: Queue<ErasureJob>;
  accountRetentionMonths: number;
}

const auditQuerySchema = z.object({
  from: z.string().optional(),
  to: z.string().optional(),
  key_id: z.string().max(128).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
});

export function registerPrivacyRoutes(app: FastifyInstance, deps: PrivacyRouteDeps): void {
  const validAccount = (account: string) => account.length > 0 && account.length <= LIMITS.accountIdLength;

  app.get<{ Params: { account: string }; Querystring: { format?: string } }>(
    '/v1/accounts/:account/export',
    { preHandler: deps.keys.require('privacy') },
    async (req, reply) => {
      const { account } = req.params;
      if (!validAccount(account)) return sendError(reply, 400, 'invalid_account', `account ids are 1 to ${LIMITS.accountIdLength} characters`);
      const format = req.query.format ?? (req.headers.accept?.includes('text/csv') ? 'csv' : 'json');
      if (format !== 'json' && format !== 'csv') return sendError(reply, 400, 'invalid_query', 'format must be json or csv');
      const body = Readable.from(format === 'csv' ? exportAccountCsv(deps.ch, account) : exportAccountJson(deps.ch, account));
      return reply
        .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8')
        .header('content-disposition', `attachment; filename="account-export.${format}"`)
        .send(body);
    },
  );

  app.delete<{ Params: { account: string } }>('/v1/accounts/:account', { preHandler: deps.keys.require('privacy') }, async (req, reply) => {
    const { account } = req.params;
    if (!validAccount(account)) return sendError(reply, 400, 'invalid_account', `account ids are 1 to ${LIMITS.accountIdLength} characters`);
    const requestId = await requestErasure({ redis: deps.redis, keys: deps.redisKeys }, deps.erasureQueue, account, 'request');
    return reply.code(202).send({ request_id: requestId, status: 'queued', status_url: `/v1/erasures/${requestId}` });
  });

  app.get<{ Params: { id: string } }>('/v1/erasures/:id', { preHandler: deps.keys.require('privacy') }, async (req, reply) => {
    if (!z.uuid().safeParse(req.params.id).success) return sendError(reply, 400, 'invalid_request_id', 'erasure request ids are UUIDs');
    const status = await erasureStatus(deps.redis, deps.redisKeys, req.params.id);
    if (!status) return sendError(reply, 404, 'not_found', 'no such erasure request (statuses are kept 90 days)');
    return { request_id: req.params.id, ...status };
  });

  app.post<{ Params: { account: string } }>(
    '/v1/accounts/:account/terminate',
    { preHandler: deps.keys.require('billing', 'privacy') },
    async (req, reply) => {
      if (!validAccount(req.params.account)) return sendError(reply, 400, 'invalid_account', `account ids are 1 to ${LIMITS.accountIdLength} characters`);
      return terminateAccount(deps.ch, req.params.account, Date.now(), deps.accountRetentionMonths);
    },
  );

  app.get<{ Querystring: Record<string, string> }>('/v1/audit', { preHandler: deps.keys.require('privacy') }, async (req, reply) => {
    const q = auditQuerySchema.safeParse(req.query);
    if (!q.success) return sendError(reply, 400, 'invalid_query', q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    const from = q.data.from === undefined ? Date.now() - 24 * 3_600_000 : parseTimeBound(q.data.from);
    const to = q.data.to === undefined ? Date.now() + 60_000 : parseTimeBound(q.data.to);
    if (from === undefined || to === undefined) return sendError(reply, 400, 'invalid_query', 'from and to must be RFC 3339 with a time zone, YYYY-MM-DD or epoch ms');
    const rows = await queryRows(
      deps.ch,
      `SELECT ts, key_id, role, method, route, path, status, duration_ms, request_id FROM audit.api_calls
       WHERE ts >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND ts < fromUnixTimestamp64Milli({to:Int64}, 'UTC')
         AND ({key:String} = '' OR key_id = {key:String})
       ORDER BY ts DESC LIMIT {limit:UInt32}`,
      { from, to, key: q.data.key_id ?? '', limit: q.data.limit },
    );
    return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), rows };
  });
}
