/** The read side of the HTTP API for billing. */
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { KeyRing } from '../lib/auth.js';
import type { ClickHouseClient } from '../lib/clickhouse.js';
import { sendError } from '../lib/http-errors.js';
import { z } from 'zod';
import { API_TIME_MAX_MS, API_TIME_MIN_MS, fromClickHouseDateTime, toIso } from '../lib/time.js';
import type { RedisKeys } from '../schemas/queues.js';
import { parseAccountParam } from '../domain/accounts.js';
import { accountCompleteness } from '../domain/ledger.js';
import { queryAccountAdjustments } from '../domain/adjustments.js';
import { producerReports } from '../lib/producers.js';
import { accountCoverage } from './coverage.js';
import { nextPeriod, PeriodStateCache, parsePeriod, periodLabel, periodOf, periodStatus, toDateString, type PeriodState } from '../domain/periods.js';
import { queryAccountUsage, resolveUsageQuery } from './usage.js';

export interface QueryRouteDeps {
  ch: ClickHouseClient;
  redis: Redis;
  redisKeys: RedisKeys;
  keys: KeyRing;
  /** PRODUCER_IDLE_DAYS in ms: producers idle longer are not reported (they are being forgotten). */
  producerIdleMs?: number;
}

export function registerQueryRoutes(app: FastifyInstance, deps: QueryRouteDeps): void {
  registerCoverageRoutes(app, deps);
  const periodStates = new PeriodStateCache(deps.ch, deps.redis, deps.redisKeys.periodsVersion);
  app.get<{ Params: { account: string }; Querystring: Record<string, string> }>(
    '/v1/accounts/:account/usage',
    { preHandler: deps.keys.require('billing') },
    async (req, reply) => {
      const checked = parseAccountParam(req.params.account);
      if ('error' in checked) return sendError(reply, 400, 'invalid_account', checked.error);
      const { account } = checked;
      const q = resolveUsageQuery(account, req.query);
      if ('error' in q) return sendError(reply, 400, 'invalid_query', q.error);
      // Completeness is read before the totals: if it says true, every sample it vouches
      // for was already aggregated when the totals were read.
      const [completeness, states] = await Promise.all([accountCompleteness(deps.redis, deps.redisKeys, account, q.fromMs / 1000, q.toMs / 1000), periodStates.get()]);
      const [rows, adjustments] = await Promise.all([
        queryAccountUsage(deps.ch, q),
        // Adjustments exist only once some period has started closing.
        states.length > 0 ? queryAccountAdjustments(deps.ch, account, q.fromMs, q.toMs) : [],
      ]);
      return {
        account,
        from: toIso(q.fromMs),
        to: toIso(q.toMs),
        granularity: q.granularity,
        group_by: q.groupBy,
        complete: completeness.complete,
        // Why `complete` is false: in flight, waiting to be folded, or quarantined rows.
        ...(completeness.complete ? {} : { incomplete_reasons: completeness.incomplete_reasons }),
        periods: periodsOverlapping(q.fromMs, q.toMs, states),
        rows,
        // Late samples for periods already closing or closed, billed in a period of this range.
        adjustments,
      };
    },
  );
}

/** A billing period, YYYY-MM, within the months any API bound may name. */
export const periodParamSchema = z
  .string({ error: 'period must be given once, as YYYY-MM' })
  .regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'period must be a month, YYYY-MM')
  .refine((p) => {
    const start = parsePeriod(p);
    return start !== undefined && start >= API_TIME_MIN_MS && nextPeriod(start) <= API_TIME_MAX_MS;
  }, `period must be a month from ${toIso(API_TIME_MIN_MS).slice(0, 7)} to ${toIso(API_TIME_MAX_MS - 1).slice(0, 7)}`);

export const coverageQuerySchema = z.object({ period: periodParamSchema.optional() }).strict();
const noQuerySchema = z.object({}).strict();

/** A query's zod issues as one message: unknown parameters by name, others by field. */
export function queryIssues(error: z.ZodError): string {
  return error.issues.map((i) => (i.code === 'unrecognized_keys' ? `unknown parameter ${i.keys.join(', ')}` : `${i.path.join('.') || 'query'}: ${i.message}`)).join('; ');
}

/** Coverage and producer gaps: whether an invoice's data is all there. */
function registerCoverageRoutes(app: FastifyInstance, deps: QueryRouteDeps): void {
  app.get<{ Params: { account: string }; Querystring: unknown }>(
    '/v1/accounts/:account/coverage',
    { preHandler: deps.keys.require('billing') },
    async (req, reply) => {
      const checked = parseAccountParam(req.params.account);
      if ('error' in checked) return sendError(reply, 400, 'invalid_account', checked.error);
      const q = coverageQuerySchema.safeParse(req.query);
      if (!q.success) return sendError(reply, 400, 'invalid_query', queryIssues(q.error));
      const label = q.data.period ?? periodLabel(Date.now());
      const start = parsePeriod(label)!;
      return { account: checked.account, period: label, metrics: await accountCoverage(deps.ch, checked.account, start, nextPeriod(start)) };
    },
  );
  app.get<{ Querystring: unknown }>('/v1/producers', { preHandler: deps.keys.require('billing') }, async (req, reply) => {
    const q = noQuerySchema.safeParse(req.query);
    if (!q.success) return sendError(reply, 400, 'invalid_query', queryIssues(q.error));
    return { producers: await producerReports(deps.redis, deps.redisKeys, deps.producerIdleMs) };
  });
}

/** The status of every billing period the range touches. */
function periodsOverlapping(fromMs: number, toMs: number, states: readonly PeriodState[]) {
  const byPeriod = new Map(states.map((s) => [s.period, s]));
  const out: { period: string; status: string; closed_at?: string; export_sha256?: string }[] = [];
  for (let p = periodOf(fromMs); p < toMs; p = nextPeriod(p)) {
    const state = byPeriod.get(toDateString(p));
    const status = periodStatus(p, Date.now(), state);
    out.push({
      period: periodLabel(p),
      status,
      // The engine prints closed_at without a zone; the API speaks RFC 3339 with Z.
      ...(status === 'closed' && state?.closed_at ? { closed_at: toIso(fromClickHouseDateTime(state.closed_at)), export_sha256: state.export_sha256 } : {}),
    });
  }
  return out;
}
