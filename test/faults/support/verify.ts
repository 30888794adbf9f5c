/**
 * The two checks every fault scenario ends with:
 *  1. once the usage API says `complete`, every account's base totals equal the exact
 *     oracle (test/support/oracle.ts), compared as decimal strings;
 *  2. every sample acknowledged with 202 is counted by billing, exactly once, and nothing
 *     else is: the counted natural keys are exactly the acknowledged ones, and the hourly
 *     aggregates hold exactly that many samples.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { queryRows, type ClickHouseClient } from '../../../lib/clickhouse.js';
import { UINT64_MAX } from '../../../domain/periods.js';
import { redisKeys } from '../../../schemas/queues.js';
import { expectedTotals, type SentSample } from '../../support/oracle.js';
import { KEYS } from '../../support/pipeline.js';

export interface TotalsCheck {
  /** Accounts whose totals differ from the oracle: key → { got, want }. */
  mismatches: Record<string, { got: string | undefined; want: string | undefined }>;
  accounts: number;
  /** How long it took until every account's range was complete. */
  waitedMs: number;
}

/** Polls each account's usage until `complete`, then compares all totals with the oracle. */
export async function checkTotals(
  baseUrl: string,
  accounts: readonly string[],
  range: { fromMs: number; toMs: number },
  acknowledged: readonly SentSample[],
  timeoutMs = 90_000,
  /** What to say when `complete` never comes (e.g. pipelineState below). */
  diagnose?: () => Promise<string>,
): Promise<TotalsCheck> {
  const started = Date.now();
  const got = new Map<string, string>();
  for (const account of accounts) {
    for (;;) {
      const res = await fetch(`${baseUrl}/v1/accounts/${encodeURIComponent(account)}/usage?from=${range.fromMs}&to=${range.toMs}`, {
        headers: { authorization: `Bearer ${KEYS.billing}` },
      });
      if (res.status !== 200) throw new Error(`usage of ${account}: HTTP ${res.status} ${await res.text()}`);
      const body = (await res.json()) as { complete: boolean; rows: { metric: string; base_total: string }[] };
      if (body.complete) {
        for (const r of body.rows) got.set(`${account}|${r.metric}`, r.base_total);
        break;
      }
      if (Date.now() - started > timeoutMs) {
        throw new Error(`usage of ${account} still not complete after ${timeoutMs} ms${diagnose ? `: ${await diagnose()}` : ''}`);
      }
      await sleep(100);
    }
  }
  const want = expectedTotals(acknowledged);
  const mismatches: TotalsCheck['mismatches'] = {};
  for (const key of new Set([...want.keys(), ...got.keys()])) {
    if (want.get(key) !== got.get(key)) mismatches[key] = { got: got.get(key), want: want.get(key) };
  }
  return { mismatches, accounts: accounts.length, waitedMs: Date.now() - started };
}

export interface BilledCheck {
  /** Distinct samples (natural keys) among those acknowledged. */
  distinctAcknowledged: number;
  /** Samples billing counts (billing.counted_samples over every hour). */
  billed: number;
  /** Sum of `samples` over billing.usage_hourly FINAL: what the aggregates hold. */
  aggregated: number;
  /** Acknowledged samples billing does not count (must be none). */
  missing: string[];
  /** Counted samples nobody acknowledged (must be none: producers retry until 202). */
  unexpected: string[];
}

const naturalKey = (s: { account_id: string; resource_id: string; metric: string; ts: string | number }) =>
  `${s.account_id}|${s.resource_id}|${s.metric}|${typeof s.ts === 'number' ? s.ts : Date.parse(s.ts)}`;

export async function checkBilled(ch: ClickHouseClient, acknowledged: readonly SentSample[]): Promise<BilledCheck> {
  const want = new Set(acknowledged.map(naturalKey));
  const hours = await queryRows<{ h: string }>(ch, 'SELECT DISTINCT toUnixTimestamp(usage_hour) AS h FROM billing.samples_raw ORDER BY h');
  const counted = new Set<string>();
  for (const { h } of hours) {
    const rows = await queryRows<{ account_id: string; resource_id: string; metric: string; ts: string }>(
      ch,
      `SELECT account_id, resource_id, toString(metric) AS metric, toUnixTimestamp64Milli(ts) AS ts
       FROM billing.counted_samples(hour = {hour:DateTime('UTC')}, through = {through:UInt64})`,
      { hour: Number(h), through: UINT64_MAX },
    );
    for (const r of rows) {
      const key = naturalKey({ ...r, ts: Number(r.ts) });
      if (counted.has(key)) throw new Error(`sample counted twice: ${key}`);
      counted.add(key);
    }
  }
  const [agg] = await queryRows<{ n: string }>(ch, 'SELECT toString(sum(samples)) AS n FROM billing.usage_hourly FINAL');
  return {
    distinctAcknowledged: want.size,
    billed: counted.size,
    aggregated: Number(agg?.n ?? 0),
    missing: [...want].filter((k) => !counted.has(k)).slice(0, 20),
    unexpected: [...counted].filter((k) => !want.has(k)).slice(0, 20),
  };
}

/** The pipeline's batch-level state in Redis, for a failure message. */
export async function pipelineState(redis: Redis, prefix: string): Promise<string> {
  const keys = redisKeys(prefix);
  const q = `${keys.bullPrefix}:batches`;
  const [inflight, dirty, locks, wait, active, delayed, failed] = await Promise.all([
    redis.zcard(keys.inflight),
    redis.hgetall(keys.dirtyHours),
    redis.keys(`${prefix}:rollup-lock:*`),
    redis.llen(`${q}:wait`),
    redis.llen(`${q}:active`),
    redis.zcard(`${q}:delayed`),
    redis.zcard(`${q}:failed`),
  ]);
  const lockTtls = await Promise.all(locks.map(async (k) => `${k.slice(prefix.length + 1)} (ttl ${await redis.pttl(k)} ms)`));
  const marks = await redis.zrange(keys.inflight, '0', '4');
  const jobless = (await Promise.all(marks.map(async (id) => ((await redis.exists(`${q}:${id}`)) ? [] : [id])))).flat();
  return `in flight ${inflight} (without a job: ${jobless.length} of the first ${marks.length}), dirty hours ${JSON.stringify(dirty)}, rollup locks [${lockTtls.join(', ')}], ` +
    `jobs wait ${wait} active ${active} delayed ${delayed} failed ${failed}`;
}
