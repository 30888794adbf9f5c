/**
 * Per-producer sequence numbers. A producer may number its batches (X-Producer-Id,
 * X-Producer-Seq, counting from 0); the pipeline then knows which batches it never
 * received, and a retry that finally arrives closes its gap.
 *
 * Everything here is bounded, because producer ids and numbers come from the network
 * (issue 11: one request per new id with a huge number used to cost ~1.4 MB of Redis):
 *   - missing numbers are kept as ranges ("first-last"), so one gap costs one entry
 *     however wide it is;
 *   - at most `maxGapRanges` ranges per producer (the oldest ones; newer ones beyond the
 *     bound are kept only as a count);
 *   - at most `maxTracked` producers; a new one beyond that is refused before its batch
 *     is processed (429), since room only comes back as idle producers are forgotten;
 *   - a producer idle for `idleMs` is forgotten (its gap key expires, its hash fields are
 *     swept a few at a time by later calls);
 *   - only a batch with accepted samples is recorded: refused input costs nothing here.
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../schemas/queues.js';

export interface ProducerLimits {
  maxTracked: number;
  maxGapRanges: number;
  idleMs: number;
}

export const DAY_MS = 86_400_000;

/** The longest Retry-After a refused new producer is told: room may come back sooner. */
const MAX_RETRY_AFTER_S = 3600;

/** Lua helpers shared by both scripts. Numbers reach 10^15: never let Lua print them as 1e+15. */
const LUA_COMMON = `
local function fmt(n) return string.format('%.0f', n) end
local function parse(m)
  local a, b = string.match(m, '^(%d+)%-(%d+)$')
  if a then return tonumber(a), tonumber(b) end
  local n = tonumber(m) -- one member per number, as stored before ranges
  return n, n
end
-- Forget a few producers idle past the cutoff: amortized, so no call does unbounded work.
local function sweep(seen, highs, untracked, cutoff)
  local old = redis.call('ZRANGEBYSCORE', seen, '-inf', cutoff, 'LIMIT', 0, 32)
  for _, p in ipairs(old) do
    redis.call('HDEL', highs, p)
    redis.call('HDEL', untracked, p)
    redis.call('ZREM', seen, p)
  end
end
`;

// KEYS: seen zset, highs hash, untracked hash. ARGV: producer, now ms, idle ms, max tracked.
// Returns 0 when the producer may send, else the ms until the oldest producer is forgotten.
const ADMIT = `${LUA_COMMON}
local now, idle, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
sweep(KEYS[1], KEYS[2], KEYS[3], now - idle)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
if redis.call('ZCARD', KEYS[1]) < cap then return 0 end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + idle - now)`;

// KEYS: seen zset, highs hash, untracked hash, this producer's gap ranges (zset, score = first).
// ARGV: producer, seq, now ms, idle ms, max tracked, max ranges. Returns 1 if recorded.
const RECORD = `${LUA_COMMON}
local p, seq, now, idle = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local cap, maxRanges = tonumber(ARGV[5]), tonumber(ARGV[6])
local seen, highs, untracked, gaps = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
sweep(seen, highs, untracked, now - idle)
if not redis.call('ZSCORE', seen, p) then
  local legacy = redis.call('HEXISTS', highs, p) == 1 -- tracked before last-seen times existed
  if not legacy then
    -- Admitted before the batch, but others may have taken the room since: the batch is
    -- durable already, so it keeps its 202 and only its number goes unrecorded.
    if redis.call('ZCARD', seen) >= cap then return 0 end
    redis.call('DEL', gaps) -- a forgotten producer starts over, without stale gaps
    redis.call('HDEL', untracked, p)
  end
end
redis.call('ZADD', seen, now, p)
local high = tonumber(redis.call('HGET', highs, p) or '-1')
-- The oldest ranges are kept (they matter most to billing); one that would exceed the bound
-- is only counted. Checked before adding, so the set never grows past the bound even for a
-- moment (Redis keeps a small sorted set compact, a listpack, and never shrinks it back).
local function keep(a, b)
  if redis.call('ZCARD', gaps) < maxRanges then
    redis.call('ZADD', gaps, a, fmt(a) .. '-' .. fmt(b))
  else
    redis.call('HINCRBY', untracked, p, fmt(b - a + 1))
  end
end
if seq > high then
  if seq > high + 1 then keep(high + 1, seq - 1) end
  redis.call('HSET', highs, p, fmt(seq))
elseif seq < high then
  local r = redis.call('ZREVRANGEBYSCORE', gaps, seq, '-inf', 'LIMIT', 0, 1)
  if r[1] then
    local a, b = parse(r[1])
    if seq <= b then
      redis.call('ZREM', gaps, r[1])
      if a < seq then keep(a, seq - 1) end
      if seq < b then keep(seq + 1, b) end
    end
  end
  -- A number counted beyond the bound that arrives later stays counted: it cannot be told
  -- from a re-sent duplicate.
end
redis.call('PEXPIRE', gaps, idle)
return 1`;

/** Derived from the producers hash's name, so every key stays under KEY_PREFIX. */

export type Admission = { ok: true } | { ok: false; retryAfterS: number; message: string };

export class ProducerTracker {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    readonly limits: ProducerLimits,
  ) {}

  /** Before a batch is processed: a known producer always may send; a new one while there is room. */
  async admit(producer: string, nowMs = Date.now()): Promise<Admission> {
    const { keys, limits } = this;
    const waitMs = Number(await this.redis.eval(ADMIT, 3, keys.producersSeen, keys.producers, keys.producerUntracked, producer, nowMs, limits.idleMs, limits.maxTracked));
    if (waitMs === 0) return { ok: true };
    return {
      ok: false,
      retryAfterS: Math.min(MAX_RETRY_AFTER_S, Math.ceil(waitMs / 1000)),
      message:
        `${limits.maxTracked} producers are tracked already, the most this pipeline keeps; a new X-Producer-Id is accepted ` +
        `once one has been idle for ${Math.round(limits.idleMs / DAY_MS)} days. Send the batch without X-Producer-Id/X-Producer-Seq, or retry later`,
    };
  }

  /** After a batch with accepted samples: its number is received. False if there was no room (a race with admit). */
  async record(producer: string, seq: number, nowMs = Date.now()): Promise<boolean> {
    const { keys, limits } = this;
    const done = await this.redis.eval(
      RECORD, 4, keys.producersSeen, keys.producers, keys.producerUntracked, keys.producerGaps(producer),
      producer, seq, nowMs, limits.idleMs, limits.maxTracked, limits.maxGapRanges,
    );
    return Number(done) === 1;
  }
}

export interface ProducerReport {
  producer: string;
  last_seq: number;
  missing: number;
  /** The oldest missing sequence numbers (at most 20). */
  first_missing: number[];
}

const FIRST_MISSING = 20;

/** Every tracked producer (bounded by PRODUCER_MAX_TRACKED, each by PRODUCER_MAX_GAP_RANGES). */
export async function producerReports(redis: Redis, keys: RedisKeys, idleMs?: number, nowMs = Date.now()): Promise<ProducerReport[]> {
  const [highs, untracked, seen] = await Promise.all([
    redis.hgetall(keys.producers),
    redis.hgetall(keys.producerUntracked),
    redis.zrange(keys.producersSeen, '0', '-1', 'WITHSCORES'),
  ]);
  const lastSeen = new Map<string, number>();
  for (let i = 0; i + 1 < seen.length; i += 2) lastSeen.set(seen[i]!, Number(seen[i + 1]));
  // Not swept yet but past its idle time: as good as forgotten.
  const live = Object.entries(highs)
    .filter(([producer]) => idleMs === undefined || (lastSeen.get(producer) ?? nowMs) > nowMs - idleMs)
    .sort(([a], [b]) => a.localeCompare(b));
  const batch = redis.pipeline();
  for (const [producer] of live) batch.zrange(keys.producerGaps(producer), '0', '-1');
  const ranges = (await batch.exec()) ?? [];
  return live.map(([producer, high], i) => {
    const [err, members] = ranges[i] ?? [null, []];
    if (err) throw err;
    let missing = Number(untracked[producer] ?? 0);
    const first: number[] = [];
    for (const member of members as string[]) {
      const [a, b] = parseRange(member);
      missing += b - a + 1;
      for (let s = a; s <= b && first.length < FIRST_MISSING; s++) first.push(s);
    }
    return { producer, last_seq: Number(high), missing, first_missing: first };
  });
}

function parseRange(member: string): [number, number] {
  const dash = member.indexOf('-');
  if (dash < 0) return [Number(member), Number(member)];
  return [Number(member.slice(0, dash)), Number(member.slice(dash + 1))];
}
