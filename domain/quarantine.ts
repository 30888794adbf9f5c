/**
 * The quarantine: acknowledged rows the engine refused for good (their data, not an
 * outage: workers/poison-isolation.ts decides). The rest of their batch is written; these
 * rows wait here, visibly, until an operator replays or discards them. A quarantined row
 * holds back nothing but its own account: the batch leaves the in-flight set and the fold
 * watermark passes it, and only the usage of the accounts it names reports incomplete,
 * with the reason (`quarantinedFor`).
 *
 * Keys (schemas/queues.ts redisKeys), all written by the scripts below only:
 *   quarantineMeta     HASH id → entry without rows (JSON)   read by list/show/usage API
 *   quarantineRows     HASH id → the refused rows, encoded as in the batch job
 *   quarantineIndex    ZSET id → first seen (ms)              listing order
 *   quarantineAccounts HASH account → ids of entries naming it (space-separated)
 *   quarantineTotal    the number of quarantined rows, bounded by QUARANTINE_MAX_ROWS
 * What must hold: an id is in all of meta, rows and index or in none; an account's list
 * names exactly the entries whose meta lists it; the total is the sum of their row counts.
 * An entry's id is the batch id it came from, so a redelivered job quarantines nothing twice.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { RedisKeys } from '../schemas/queues.js';
import { decodeStoredRow } from '../schemas/raw-row.js';
import { usageHourOf } from '../lib/time.js';

export const quarantineMetaSchema = z.object({
  /** The batch the rows came from (its job id). */
  id: z.string().min(1),
  batchSeq: z.number().int().nonnegative(),
  acceptedAtMs: z.number().int(),
  firstSeenMs: z.number().int(),
  /** The engine's error type and message for the first refused row. */
  reason: z.string(),
  rowFormat: z.enum(['JSONEachRow', 'JSONCompactEachRow']),
  rowCount: z.number().int().positive(),
  /** Account → the usage hours (epoch seconds) its refused rows fall in. */
  accounts: z.record(z.string(), z.array(z.number().int())),
});
export type QuarantineMeta = z.infer<typeof quarantineMetaSchema>;

export interface QuarantineEntry extends QuarantineMeta {
  rows: string;
}

const keysOf = (k: RedisKeys) => [k.quarantineMeta, k.quarantineRows, k.quarantineIndex, k.quarantineAccounts, k.quarantineTotal];

// KEYS: meta, rows, index, accounts, total. ARGV: id, meta json, rows, row count, first seen, max rows, accounts…
// Returns 1 added, 0 already there (a redelivered job), -1 over the bound.
const ADD = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local total = tonumber(redis.call('GET', KEYS[5]) or '0')
if total + tonumber(ARGV[4]) > tonumber(ARGV[6]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('INCRBY', KEYS[5], ARGV[4])
for i = 7, #ARGV do
  local ids = redis.call('HGET', KEYS[4], ARGV[i])
  redis.call('HSET', KEYS[4], ARGV[i], ids and (ids .. ' ' .. ARGV[1]) or ARGV[1])
end
return 1`;

// KEYS: as ADD. ARGV: id, then the entry's new meta json and rows, or nothing to remove it.
// Accounts no longer named lose the id from their list. Returns 1 changed, 0 no such entry.
const REPLACE = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return 0 end
local before = cjson.decode(old)
local keep = {}
local newCount = 0
if ARGV[2] then
  local after = cjson.decode(ARGV[2])
  for account, _ in pairs(after.accounts) do keep[account] = true end
  newCount = after.rowCount
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
redis.call('DECRBY', KEYS[5], before.rowCount - newCount)
for account, _ in pairs(before.accounts) do
  if not keep[account] then
    local rest = {}
    for id in string.gmatch(redis.call('HGET', KEYS[4], account) or '', '%S+') do
      if id ~= ARGV[1] then table.insert(rest, id) end
    end
    if #rest == 0 then redis.call('HDEL', KEYS[4], account) else redis.call('HSET', KEYS[4], account, table.concat(rest, ' ')) end
  end
end
return 1`;

/**
 * Adds an entry, unless one with its id is there already (a redelivered job) or the
 * quarantine would pass its bound. The batch writer marks the batch written only after
 * this answered 'added' or 'present': between the two the rows are in both places, never
 * in neither.
 */
export async function addToQuarantine(redis: Redis, keys: RedisKeys, entry: QuarantineEntry, maxRows: number): Promise<'added' | 'present' | 'full'> {
  const { rows, ...meta } = entry;
  const r = Number(await redis.eval(ADD, 5, ...keysOf(keys), entry.id, JSON.stringify(meta), rows, entry.rowCount, entry.firstSeenMs, maxRows, ...Object.keys(entry.accounts)));
  return r === 1 ? 'added' : r === 0 ? 'present' : 'full';
}

/** Oldest first. */
export async function listQuarantine(redis: Redis, keys: RedisKeys, page: { offset?: number; limit?: number } = {}): Promise<QuarantineMeta[]> {
  const offset = Math.max(0, page.offset ?? 0);
  const limit = Math.min(1000, Math.max(1, page.limit ?? 100));
  const ids = await redis.zrange(keys.quarantineIndex, String(offset), String(offset + limit - 1));
  if (ids.length === 0) return [];
  const metas = await redis.hmget(keys.quarantineMeta, ...ids);
  return metas.flatMap((m) => (m ? [quarantineMetaSchema.parse(JSON.parse(m))] : []));
}

export async function quarantineStats(redis: Redis, keys: RedisKeys): Promise<{ entries: number; rows: number }> {
  const [entries, rows] = await Promise.all([redis.zcard(keys.quarantineIndex), redis.get(keys.quarantineTotal)]);
  return { entries, rows: Number(rows ?? 0) };
}

export async function getQuarantine(redis: Redis, keys: RedisKeys, id: string): Promise<QuarantineEntry | undefined> {
  const [meta, rows] = await Promise.all([redis.hget(keys.quarantineMeta, id), redis.hget(keys.quarantineRows, id)]);
  if (!meta || rows === null) return undefined;
  return { ...quarantineMetaSchema.parse(JSON.parse(meta)), rows };
}

/** Removes an entry (discarded, or replayed into a new batch). False when there was none. */
export async function removeQuarantine(redis: Redis, keys: RedisKeys, id: string): Promise<boolean> {
  return Number(await redis.eval(REPLACE, 5, ...keysOf(keys), id)) === 1;
}

/** Replaces an entry's rows and meta (erasure takes one account's rows out of it). */
export async function replaceQuarantine(redis: Redis, keys: RedisKeys, entry: QuarantineEntry): Promise<boolean> {
  const { rows, ...meta } = entry;
  return Number(await redis.eval(REPLACE, 5, ...keysOf(keys), entry.id, JSON.stringify(meta), rows)) === 1;
}

/** The entries holding rows of `account` in [fromS, toS): why its usage there is incomplete. */
export async function quarantinedFor(redis: Redis, keys: RedisKeys, account: string, fromS: number, toS: number): Promise<QuarantineMeta[]> {
  const ids = (await redis.hget(keys.quarantineAccounts, account))?.split(' ').filter(Boolean) ?? [];
  if (ids.length === 0) return [];
  const metas = await redis.hmget(keys.quarantineMeta, ...ids);
  return metas.flatMap((m) => {
    if (!m) return [];
    const meta = quarantineMetaSchema.parse(JSON.parse(m));
    return (meta.accounts[account] ?? []).some((h) => h >= fromS && h < toS) ? [meta] : [];
  });
}

/** Ids of the entries that hold rows of `account` (erasure). */
export async function quarantineIdsFor(redis: Redis, keys: RedisKeys, account: string): Promise<string[]> {
  return (await redis.hget(keys.quarantineAccounts, account))?.split(' ').filter(Boolean) ?? [];
}

/**
 * Account → usage hours of quarantined rows. What a row does not say readably (its account,
 * its hour) counts as every account or hour of `unknown` (its batch's lists): it might be any.
 */
export function accountsOfRows(format: QuarantineMeta['rowFormat'], lines: readonly string[], unknown: { accounts: readonly string[]; hours: readonly number[] }): Record<string, number[]> {
  const out = new Map<string, Set<number>>();
  for (const line of lines) {
    const row = readRow(format, line);
    const accounts = row.account_id !== undefined ? [row.account_id] : unknown.accounts;
    const hours = row.usage_hour !== undefined ? [row.usage_hour] : unknown.hours;
    for (const a of accounts) {
      const set = out.get(a) ?? new Set<number>();
      for (const h of hours) set.add(h);
      out.set(a, set);
    }
  }
  return Object.fromEntries([...out].map(([a, h]) => [a, [...h].sort((x, y) => x - y)]));
}

/** The account and usage hour of a stored row, as far as they can be read. */
export function readRow(format: QuarantineMeta['rowFormat'], line: string): { account_id?: string; usage_hour?: number } {
  let row: { account_id?: unknown; usage_hour?: unknown; ts?: unknown };
  try {
    row = decodeStoredRow(line, format);
  } catch {
    return {};
  }
  // The hour follows from ts by one rule (lib/time.ts), so a row whose hour column is the
  // broken part still names its hour.
  const hour = typeof row.ts === 'number' && Number.isFinite(row.ts) ? usageHourOf(row.ts) : typeof row.usage_hour === 'number' ? row.usage_hour : undefined;
  return { ...(typeof row.account_id === 'string' ? { account_id: row.account_id } : {}), ...(hour !== undefined ? { usage_hour: hour } : {}) };
}

/** The entry reduced to `lines` (a subset of its rows), its account map rebuilt from them. */
export function withRows(entry: QuarantineEntry, lines: readonly string[]): QuarantineEntry {
  const unknown = { accounts: Object.keys(entry.accounts), hours: [...new Set(Object.values(entry.accounts).flat())] };
  return { ...entry, rows: lines.join('\n') + '\n', rowCount: lines.length, accounts: accountsOfRows(entry.rowFormat, lines, unknown) };
}

/**
 * Erasure: every quarantined row of the account goes, and with it every row that cannot
 * be read in an entry naming the account (it may be the account's). Returns rows removed.
 */
export async function eraseFromQuarantine(redis: Redis, keys: RedisKeys, account: string): Promise<number> {
  let removed = 0;
  for (const id of await quarantineIdsFor(redis, keys, account)) {
    const entry = await getQuarantine(redis, keys, id);
    if (!entry) continue;
    const lines = entry.rows.split('\n').filter(Boolean);
    const keep = lines.filter((line) => {
      const owner = readRow(entry.rowFormat, line).account_id;
      return owner !== undefined && owner !== account;
    });
    removed += lines.length - keep.length;
    if (keep.length === 0) await removeQuarantine(redis, keys, id);
    else await replaceQuarantine(redis, keys, withRows(entry, keep));
  }
  return removed;
}
