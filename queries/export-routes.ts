/**
 * GET /v1/usage (billing key): every account's totals for a billing period or a range,
 * streamed as NDJSON or CSV (by Accept, or `format=`), one page of accounts per request.
 *
 *   ?period=2026-11 | ?from=…&to=…    what to export (whole hours)
 *   &group_by=resource_id,region       finer rows (metric is always a key)
 *   &limit=1000&cursor=…               accounts per page; the cursor of the next page
 *
 * Headers: X-Next-Cursor and Link rel="next" while more pages follow; X-Total-Accounts
 * (the whole export) and X-Page-Accounts (this page); X-Complete: whether every sample
 * acknowledged for the range is aggregated; with `period`, X-Period-Status (open, closing,
 * closed) and, once closed, X-Export-SHA256: the digest recorded at close of the full
 * NDJSON export (all pages, no group_by), which never changes. A failure after the first byte aborts the
 * response (no clean end of stream), so a truncated page is never mistaken for a whole one.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { KeyRing } from '../lib/auth.js';
import type { ClickHouseClient } from '../lib/clickhouse.js';
import { sendError } from '../lib/http-errors.js';
import type { RedisKeys } from '../schemas/queues.js';
import { isComplete } from '../domain/ledger.js';
import { loadPeriodStates, periodStatus, toDateString } from '../domain/periods.js';
import {
  EXPORT_FORMATS,
  accountPage,
  countAccounts,
  csvHeader,
  exportColumns,
  negotiateFormat,
  pageRecords,
  resolveExportRequest,
  toCsvLine,
  toNdjsonLine,
  type ExportFormat,
} from './export/usage-export.js';

export interface ExportRouteDeps {
  ch: ClickHouseClient;
  redis: Redis;
  redisKeys: RedisKeys;
  keys: KeyRing;
}

export function registerExportRoutes(app: FastifyInstance, deps: ExportRouteDeps): void {
  app.get<{ Querystring: Record<string, string> }>('/v1/usage', { preHandler: deps.keys.require('billing') }, async (req, reply) => {
    const request = resolveExportRequest(req.query);
    if ('error' in request) return sendError(reply, 400, request.code, request.error);
    const exportRequest = request; // narrowed, for the body generator below
    // `format` was validated with the rest of the query.
    const format: ExportFormat | undefined = (req.query.format as ExportFormat | undefined) ?? negotiateFormat(req.headers.accept);
    if (!format) return sendError(reply, 406, 'not_acceptable', 'this export is application/x-ndjson or text/csv: set Accept, or format=ndjson|csv');

    // Completeness first: if it says true, everything it vouches for is in what follows.
    const complete = await isComplete(deps.redis, deps.redisKeys, request.fromMs / 1000, request.toMs / 1000);
    const [page, total] = await Promise.all([accountPage(deps.ch, request), countAccounts(deps.ch, request)]);
    const columns = exportColumns(request);

    reply
      .header('content-type', EXPORT_FORMATS[format].contentType)
      .header('cache-control', 'no-store')
      .header('x-complete', String(complete))
      .header('x-total-accounts', String(total))
      .header('x-page-accounts', String(page.accounts.length));
    if (request.period) {
      const start = Date.parse(`${request.period}-01T00:00:00Z`);
      const state = (await loadPeriodStates(deps.ch)).find((s) => s.period === toDateString(start));
      const status = periodStatus(start, Date.now(), state);
      reply.header('x-period-status', status);
      if (status === 'closed' && state) reply.header('x-export-sha256', state.export_sha256);
    }
    if (page.nextCursor) {
      const next = new URLSearchParams({ ...req.query, cursor: page.nextCursor });
      reply.header('x-next-cursor', page.nextCursor).header('link', `</v1/usage?${next.toString()}>; rel="next"`);
    }

    async function* body(): AsyncGenerator<string> {
      if (format === 'csv') yield csvHeader(columns);
      for await (const rec of pageRecords(deps.ch, exportRequest, page.accounts)) {
        yield format === 'csv' ? toCsvLine(rec, columns) : toNdjsonLine(rec, columns);
      }
    }
    return reply.send(Readable.from(body()));
  });
}
