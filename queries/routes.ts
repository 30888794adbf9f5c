/** The read side of the HTTP API for billing. */
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { KeyRing } from '../lib/auth.js';
import type { ClickHouseClient } from '../lib/clickhouse.js';
import { sendError } from '../lib/http-errors.js';
import { toIso } from '../lib/time.js';
import type { RedisKeys } from '../schemas/queues.js';
import { LIMITS } from '../schemas/sample.js';
import { isComplete } from './completeness.js';
import { queryAccountAdjustments } from './adjustments.js';
import { producerReports } from '../lib/producers.js';
import { accountCoverage } from './coverage.js';
import { nextPeriod, PeriodStateCache, parsePeriod, periodLabel, periodOf, periodStatus, toDateString, type PeriodState } from './periods.js';
import { queryAccountUsage, resolveUsageQuery } from './usage.js';

export interface QueryRouteDeps {
  ch: ClickHouseClient;
  redis: Redis;
  redisKeys: RedisKeys;
  keys: KeyRing;
}

export function registerQueryRoutes(app: FastifyInstance, deps: QueryRouteDeps): void {
  registerCoverageRoutes(app, deps);
  const periodStates = new PeriodStateCache(deps.ch, deps.redis, deps.redisKeys.periodsVersion);
  app.get<{ Params: { account: string }; Querystring: Record<string, string> }>(
    '/v1/accounts/:account/usage',
    { preHandler: deps.keys.require('billing') },
    async (req, reply) => {
      const { account } = req.params;
      if (account.length === 0 || account.length > LIMITS.accountIdLength) {
        return sendError(reply, 400, 'invalid_account', `account ids are 1 to ${LIMITS.accountIdLength} characters`);
      }
      const q = resolveUsageQuery(account, req.query);
      if ('error' in q) return sendError(reply, 400, 'invalid_query', q.error);
      // Completeness is read before the totals: if it says true, every sample it vouches
      // for was already aggregated when the totals were read.
      const [complete, states] = await Promise.all([isComplete(deps.redis, deps.redisKeys, q.fromMs / 1000, q.toMs / 1000), periodStates.get()]);
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
        complete,
        periods: periodsOverlapping(q.fromMs, q.toMs, states),
        rows,
        // Late samples for periods already closing or closed, billed in a period of this range.
        adjustments,
      };
    },
  );
}

/** Coverage and producer gaps: whether an invoice's data is all there. */
function registerCoverageRoutes(app: FastifyInstance, deps: QueryRouteDeps): void {
  app.get<{ Params: { account: string }; Querystring: { period?: string } }>(
    '/v1/accounts/:account/coverage',
    { preHandler: deps.keys.require('billing') },
    async (req, reply) => {
      const label = req.query.period ?? periodLabel(Date.now());
      const start = parsePeriod(label);
      if (start === undefined) return sendError(reply, 400, 'invalid_query', 'period must be YYYY-MM');
      return { account: req.params.account, period: label, metrics: await accountCoverage(deps.ch, req.params.account, start, nextPeriod(start)) };
    },
  );
  app.get('/v1/producers', { preHandler: deps.keys.require('billing') }, async () => ({
    producers: await producerReports(deps.redis, deps.redisKeys),
  }));
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
      ...(status === 'closed' && state?.closed_at ? { closed_at: state.closed_at, export_sha256: state.export_sha256 } : {}),
    });
  }
  return out;
}
