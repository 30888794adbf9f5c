/**
 * The billing export: every account's totals for a billing period (or any whole-hour
 * range), per metric and optionally per resource and region, as NDJSON or CSV, one page
 * of accounts at a time. GET /v1/usage and `usage-meter export` both use this module.
 *
 * The rows themselves come from domain/period-export.ts, the one row builder: period mode
 * (`period=YYYY-MM`) bills what the period bills, and the pages of an export without
 * group_by, concatenated, are byte for byte the period's canonical NDJSON, whose SHA-256
 * was recorded when the period closed. Range mode (`from`/`to`) reports usage measured in
 * the hours of the range. This module parses the request and pages through accounts.
 *
 * Pages hold whole accounts, in account order; the cursor names the last account sent and
 * is bound to the request it came from. Quantities are exact decimal strings (units.ts).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { queryRows, type ClickHouseClient } from '../../lib/clickhouse.js';
import { API_TIME_MAX_MS, API_TIME_MIN_MS, HOUR_MS, timeBoundSchema, toIso } from '../../lib/time.js';
import { CURRENT_ADJUSTMENTS } from '../../domain/adjustments.js';
import { EXPORT_GROUP_BY, exportRecords, type ExportGroupBy, type ExportRecord, type ExportScope } from '../../domain/period-export.js';
import { nextPeriod, parsePeriod } from '../../domain/periods.js';

export const DEFAULT_PAGE_ACCOUNTS = 1000;
export const MAX_PAGE_ACCOUNTS = 10_000;
const MAX_RANGE_MS = 400 * 24 * HOUR_MS;

export interface ExportRequest extends ExportScope {
  /** Accounts per page. */
  limit: number;
  /** The last account already sent; '' for the first page. */
  after: string;
}

export const exportRequestSchema = z
  .object({
    period: z
      .string({ error: 'period must be given once, as YYYY-MM' })
      .regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'period must be a month, YYYY-MM')
      .refine((p) => Date.parse(`${p}-01T00:00:00Z`) >= API_TIME_MIN_MS && Date.parse(`${p}-01T00:00:00Z`) < API_TIME_MAX_MS, {
        message: `period must be a month from ${toIso(API_TIME_MIN_MS).slice(0, 7)} to ${toIso(API_TIME_MAX_MS - 1).slice(0, 7)}`,
      })
      .optional(),
    from: timeBoundSchema('from', { wholeHour: true }).optional(),
    to: timeBoundSchema('to', { wholeHour: true }).optional(),
    group_by: z
      .string({ error: 'group_by must be given once, as a comma-separated list' })
      .max(200, 'group_by must be at most 200 characters')
      .optional()
      .transform((s, ctx) => {
        const parts = [...new Set((s ?? '').split(',').map((p) => p.trim()).filter((p) => p && p !== 'metric'))];
        const bad = parts.filter((p) => !EXPORT_GROUP_BY.includes(p as ExportGroupBy));
        if (bad.length) {
          ctx.addIssue({ code: 'custom', message: `group_by accepts ${EXPORT_GROUP_BY.join(', ')} (metric is always included); not ${bad.join(', ')}` });
          return z.NEVER;
        }
        // Fixed order, whatever the request's: the same export always has the same columns.
        return EXPORT_GROUP_BY.filter((g) => parts.includes(g));
      }),
    limit: z
      .string({ error: 'limit must be given once' })
      .regex(/^\d+$/, 'limit must be a whole number')
      .transform(Number)
      .pipe(z.number().int().min(1, 'limit must be at least 1').max(MAX_PAGE_ACCOUNTS, `limit is at most ${MAX_PAGE_ACCOUNTS} accounts`))
      .optional(),
    cursor: z.string({ error: 'cursor must be given once' }).max(2048, 'cursor must be at most 2048 characters').optional(),
    /** Chosen by Accept; the parameter is an override for clients that cannot set headers. */
    format: z.enum(['ndjson', 'csv'], { error: 'format must be ndjson or csv, given once' }).optional(),
  })
  .strict();

export type ExportRequestError = { error: string; code: 'invalid_query' | 'invalid_cursor' };

export function resolveExportRequest(raw: unknown): ExportRequest | ExportRequestError {
  const parsed = exportRequestSchema.safeParse(raw);
  if (!parsed.success) {
    return { code: 'invalid_query', error: parsed.error.issues.map((i) => (i.code === 'unrecognized_keys' ? `unknown parameter ${i.keys.join(', ')}` : i.message)).join('; ') };
  }
  const q = parsed.data;
  let req: ExportRequest;
  if (q.period !== undefined) {
    if (q.from !== undefined || q.to !== undefined) return { code: 'invalid_query', error: 'give either period, or from and to, not both' };
    const start = parsePeriod(q.period)!;
    req = { mode: 'period', period: q.period, fromMs: start, toMs: nextPeriod(start), groupBy: q.group_by, limit: q.limit ?? DEFAULT_PAGE_ACCOUNTS, after: '' };
  } else {
    if (q.from === undefined || q.to === undefined) return { code: 'invalid_query', error: 'give period=YYYY-MM, or both from and to' };
    if (q.from >= q.to) return { code: 'invalid_query', error: 'from must be before to' };
    if (q.to - q.from > MAX_RANGE_MS) return { code: 'invalid_query', error: 'a range may span at most 400 days' };
    req = { mode: 'range', fromMs: q.from, toMs: q.to, groupBy: q.group_by, limit: q.limit ?? DEFAULT_PAGE_ACCOUNTS, after: '' };
  }
  if (q.cursor !== undefined) {
    const after = decodeCursor(q.cursor, req);
    if (after === undefined) return { code: 'invalid_cursor', error: 'cursor is not one this export issued: repeat the same period/from/to/group_by it came with' };
    req.after = after;
  }
  return req;
}

// --- cursors ----------------------------------------------------------------------------

/** What a cursor is bound to: a cursor of one export cannot page through another. */
function fingerprint(req: ExportRequest): string {
  return createHash('sha256').update([req.mode, req.period ?? '', req.fromMs, req.toMs, req.groupBy.join(',')].join('|')).digest('base64url').slice(0, 16);
}

export function encodeCursor(req: ExportRequest, lastAccount: string): string {
  return Buffer.from(JSON.stringify({ v: 1, q: fingerprint(req), a: lastAccount })).toString('base64url');
}

const cursorSchema = z.object({ v: z.literal(1), q: z.string(), a: z.string().min(1) });

export function decodeCursor(cursor: string, req: ExportRequest): string | undefined {
  try {
    const c = cursorSchema.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    return c.success && c.data.q === fingerprint(req) ? c.data.a : undefined;
  } catch {
    return undefined;
  }
}

// --- pages ------------------------------------------------------------------------------

const bounds = (req: ExportRequest) => ({ from: req.fromMs / 1000, to: req.toMs / 1000 });

/** Accounts with usage (or, per period, adjustments) in the export, after `after`. */
function accountsSql(req: ExportRequest, paged: boolean): string {
  const after = paged ? ' AND account_id > {after:String}' : '';
  const usage = `SELECT DISTINCT account_id FROM billing.usage_hourly
                 WHERE hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}${after}`;
  const adjusted =
    req.mode === 'period'
      ? ` UNION ALL SELECT DISTINCT account_id FROM (${CURRENT_ADJUSTMENTS})
          WHERE billed_period = toDate({from:DateTime('UTC')})${after}`
      : '';
  return `(${usage}${adjusted})`;
}

export interface AccountPage {
  accounts: string[];
  /** Set when more accounts follow: pass it back as `cursor`. */
  nextCursor?: string;
}

export async function accountPage(ch: ClickHouseClient, req: ExportRequest): Promise<AccountPage> {
  const rows = await queryRows(
    ch,
    z.object({ account_id: z.string() }),
    `SELECT account_id FROM ${accountsSql(req, true)} GROUP BY account_id ORDER BY account_id LIMIT {limit:UInt32}`,
    { ...bounds(req), after: req.after, limit: req.limit + 1 },
  );
  const accounts = rows.slice(0, req.limit).map((r) => r.account_id);
  const page: AccountPage = { accounts };
  if (rows.length > req.limit) page.nextCursor = encodeCursor(req, accounts.at(-1)!);
  return page;
}

/** How many accounts the whole export covers: for progress bars. */
export async function countAccounts(ch: ClickHouseClient, req: ExportRequest): Promise<number> {
  const [row] = await queryRows(ch, z.object({ n: z.coerce.number() }), `SELECT uniqExact(account_id) AS n FROM ${accountsSql(req, false)}`, bounds(req));
  return Number(row?.n ?? 0);
}

// --- rows -------------------------------------------------------------------------------

/** The rows of one page's accounts, streamed from ClickHouse in export order. */
export async function* pageRecords(ch: ClickHouseClient, req: ExportRequest, accounts: readonly string[]): AsyncGenerator<ExportRecord> {
  if (accounts.length === 0) return;
  yield* exportRecords(ch, req, { first: accounts[0]!, last: accounts.at(-1)! });
}

export { exportColumns, EXPORT_GROUP_BY, type ExportGroupBy, type ExportRecord } from '../../domain/period-export.js';
export { EXPORT_FORMATS, csvHeader, negotiateFormat, toCsvLine, toNdjsonLine, type ExportFormat } from './format.js';
