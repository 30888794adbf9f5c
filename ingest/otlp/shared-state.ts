/**
 * The cumulative-sum and gauge state of OTLP ingest, in Redis, shared by every ingest
 * process (INGEST_PROCESSES > 1, replicas behind a balancer): one Lua script per request
 * moves every series of the request on at once, so two processes never bill the same
 * interval. cumulative.ts turns each step's previous state into usage.
 *
 * Keys (schemas/queues.ts `redisKeys`, all under KEY_PREFIX; written only by this script):
 *
 * - `otlpScope(scope)` HASH per OTLP Resource (scope = a hash of all its attributes):
 *     `g<digest(group)>`  → "slotMs|timeNs"            a group's (resource × metric) last reading
 *     `s<digest(series)>` → "startNs|timeNs|value"     a counter series' last reading
 *   Digests (SHA-256, 64 bits) only: no account, resource or label text is stored.
 * - `otlpScopes` ZSET scope → the newest slot (ms) its hash holds: idle expiry and eviction order.
 * - `otlpFloors` ZSET scope → the newest slot of its state when that was dropped for a bound.
 * - `otlpStateMeta` HASH: `fields` (Σ fields of every scope hash), `floor` (the floor of every
 *   scope, see below), and `evicted:idle`, `evicted:limit`, `evicted:scope_limit` counters.
 *
 * What must hold, and why it does:
 *
 * - **Each interval is billed once.** A group moves on only to a strictly later slot: the
 *   script compares and writes under Redis's one-script-at-a-time rule, so for a group the
 *   accepted readings form one chain, each step billing (previous slot, slot]. A reading not
 *   newer than the stored one (a retry, or a late export another process already passed)
 *   bills nothing and changes nothing. Sample ids come from (group, window end), and the
 *   windows of one chain are disjoint, so a copy is a duplicate and nothing else is.
 * - **Dropped state only under-bills.** A group with no state starts from a baseline (bills
 *   nothing). State dropped for a bound leaves its scope a floor, the newest slot it held: a
 *   group of that scope may start a baseline only after it, so a late export from before the
 *   drop cannot become a baseline that the next export bills again from. Floors are kept
 *   per scope (one Resource's drops hold back no other's baselines) up to `maxScopes` of
 *   them; past that the lowest is folded into the floor of every scope. Idle expiry needs
 *   no floor: a scope (or a floor) is dropped only when its newest slot is `idleMs` old, and
 *   the translator refuses points older than `idleMs` less a day (for clock skew between
 *   ingest processes) before they reach the script.
 *
 * Bounds (in fields: one per group, one per counter series; ≈ 100–150 bytes each in Redis):
 *
 * - per scope `maxFieldsPerScope`: a scope that grows past it (label churn across requests)
 *   is dropped whole (a floor left) and starts again from a baseline;
 * - in total `maxFields` and `maxScopes`: past either, the scopes with the oldest newest
 *   slot are dropped (floors left) until both hold; floors: `maxScopes` (≈ 100 bytes each);
 * - idle: scopes and floors whose newest slot is older than `idleMs` are dropped (at most
 *   100 of each per request).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../../schemas/queues.js';

export interface SharedStateLimits {
  /** Fields (groups + counter series) one Resource may hold. */
  maxFieldsPerScope: number;
  /** Fields in total, every Resource of the pipeline. */
  maxFields: number;
  /** Resources held, and floors of dropped ones held. */
  maxScopes: number;
  /** A scope whose newest reading is this old is dropped. */
  idleMs: number;
}

const DAY_MS = 86_400_000;
export const DEFAULT_STATE_LIMITS: SharedStateLimits = {
  maxFieldsPerScope: 5_000 + 16,
  maxFields: 200_000,
  maxScopes: 20_000,
  idleMs: 8 * DAY_MS,
};

/** A counter series' last reading: its start time, time and raw value. */
export interface SeriesRecord {
  startNs: bigint;
  timeNs: bigint;
  /** The exporter's number as it came (String(value) round-trips a double exactly). */
  value: number;
}

export interface GroupRecord {
  slotMs: number;
  /** The latest point time of the reading (a slot is a whole second of several points). */
  timeNs: bigint;
}

/** One group's reading at one slot, to move the shared state on with. */
export interface StateStep {
  scope: string;
  group: string;
  slotMs: number;
  timeNs: bigint;
  /** Counter series (none for a gauge, whose group record is all its state). */
  series: ReadonlyArray<{ id: string; record: SeriesRecord }>;
}

export type StepOutcome =
  /** Not newer than the stored reading: bills nothing, changed nothing. */
  | { kind: 'stale' }
  /** A new group at or before its scope's floor: it may not start a baseline there. */
  | { kind: 'below_floor' }
  /** A new group: this reading is its baseline. */
  | { kind: 'baseline' }
  /**
   * Moved on from `group`; `series[i]` is step.series[i]'s previous record, if any;
   * `floorMs` the scope's floor (0: none), under which the step ran.
   */
  | { kind: 'next'; group: GroupRecord; series: Array<SeriesRecord | undefined>; floorMs: number };

export interface AdvanceResult {
  outcomes: StepOutcome[];
  evicted: { idle: number; limit: number; scopeLimit: number };
}

/**
 * KEYS: scopes, floors, meta. ARGV: idleBefore, maxFieldsPerScope, maxFields, maxScopes,
 * scope key base, n steps, then per step: scope, group field, slot, group record, n series,
 * n × (series field, record). Returns: evicted idle, limit, scope_limit, then per step its
 * kind and, for "next", the group's previous record, the scope's floor and one previous
 * record (or "") per series. Slots are epoch ms (< 2^53: exact as Lua numbers);
 * nanoseconds and values stay strings.
 */
const ADVANCE = `
local scopes, floors, meta = KEYS[1], KEYS[2], KEYS[3]
local idleBefore, maxPerScope, maxFields, maxScopes = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local base, nSteps = ARGV[5], tonumber(ARGV[6])
local total = tonumber(redis.call('HGET', meta, 'fields') or '0')
local globalStr = redis.call('HGET', meta, 'floor') or '0'
local idle, limit, scopeLimit = 0, 0, 0

local function drop(scope)
  local key = base .. scope
  total = total - redis.call('HLEN', key)
  redis.call('DEL', key)
  redis.call('ZREM', scopes, scope)
end
-- The floor a scope's state leaves behind when dropped for a bound: its newest slot.
local function leaveFloor(scope, slotStr)
  if slotStr then redis.call('ZADD', floors, 'GT', slotStr, scope) end
end

-- Idle scopes and floors, a bounded number per call. No floor left: the translator
-- refuses points this old.
for _, s in ipairs(redis.call('ZRANGEBYSCORE', scopes, '-inf', '(' .. idleBefore, 'LIMIT', 0, 100)) do
  drop(s)
  idle = idle + 1
end
for _, s in ipairs(redis.call('ZRANGEBYSCORE', floors, '-inf', '(' .. idleBefore, 'LIMIT', 0, 100)) do
  redis.call('ZREM', floors, s)
end

-- Each scope's floor as the steps see it: what this call drops comes after them.
local floorOf = {}
local function floorFor(scope)
  local f = floorOf[scope]
  if f == nil then
    f = globalStr
    local own = redis.call('ZSCORE', floors, scope)
    if own and tonumber(own) > tonumber(f) then f = own end
    floorOf[scope] = f
  end
  return f
end

local out = {}
local before, newest = {}, {}
local pos = 7
for _ = 1, nSteps do
  local scope, gfield, slotStr, grecord, n = ARGV[pos], ARGV[pos + 1], ARGV[pos + 2], ARGV[pos + 3], tonumber(ARGV[pos + 4])
  pos = pos + 5
  local key = base .. scope
  if before[scope] == nil then before[scope] = redis.call('HLEN', key) end
  local slot = tonumber(slotStr)
  local prev = redis.call('HGET', key, gfield)
  if prev and slot <= tonumber(string.match(prev, '^[^|]+')) then
    out[#out + 1] = 'stale'
  elseif not prev and slot <= tonumber(floorFor(scope)) then
    out[#out + 1] = 'below_floor'
  else
    if prev then
      out[#out + 1] = 'next'
      out[#out + 1] = prev
      out[#out + 1] = floorFor(scope)
    else
      out[#out + 1] = 'baseline'
    end
    for c = 0, n - 1, 500 do
      local last = math.min(n - 1, c + 499)
      local fields, args = {}, {}
      for j = c, last do
        fields[#fields + 1] = ARGV[pos + 2 * j]
        args[#args + 1] = ARGV[pos + 2 * j]
        args[#args + 1] = ARGV[pos + 2 * j + 1]
      end
      if prev then
        local olds = redis.call('HMGET', key, unpack(fields))
        for j = 1, #olds do out[#out + 1] = olds[j] or '' end
      end
      redis.call('HSET', key, unpack(args))
    end
    redis.call('HSET', key, gfield, grecord)
    if newest[scope] == nil or slot > tonumber(newest[scope]) then newest[scope] = slotStr end
  end
  pos = pos + 2 * n
end

for scope, b in pairs(before) do
  local key = base .. scope
  local now = redis.call('HLEN', key)
  total = total + now - b
  if newest[scope] then redis.call('ZADD', scopes, 'GT', newest[scope], scope) end
  if now > maxPerScope then
    leaveFloor(scope, redis.call('ZSCORE', scopes, scope))
    drop(scope)
    scopeLimit = scopeLimit + 1
  end
end

while total > maxFields or redis.call('ZCARD', scopes) > maxScopes do
  local oldest = redis.call('ZRANGE', scopes, 0, 0, 'WITHSCORES')
  if #oldest == 0 then break end
  leaveFloor(oldest[1], oldest[2])
  drop(oldest[1])
  limit = limit + 1
end
if total < 0 then total = 0 end
-- Floors past their bound: the lowest become the floor of every scope.
while redis.call('ZCARD', floors) > maxScopes do
  local lowest = redis.call('ZPOPMIN', floors)
  if tonumber(lowest[2]) > tonumber(globalStr) then globalStr = lowest[2] end
end

redis.call('HSET', meta, 'fields', total, 'floor', globalStr)
if idle > 0 then redis.call('HINCRBY', meta, 'evicted:idle', idle) end
if limit > 0 then redis.call('HINCRBY', meta, 'evicted:limit', limit) end
if scopeLimit > 0 then redis.call('HINCRBY', meta, 'evicted:scope_limit', scopeLimit) end
table.insert(out, 1, tostring(scopeLimit))
table.insert(out, 1, tostring(limit))
table.insert(out, 1, tostring(idle))
return out`;

export class SharedSeriesState {
  readonly limits: SharedStateLimits;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    limits: Partial<SharedStateLimits> = {},
  ) {
    this.limits = { ...DEFAULT_STATE_LIMITS, ...limits };
  }

  /**
   * Moves the state on by every step, in order, atomically (one round trip); a group's
   * later steps in the same call see its earlier ones. Steps of one group must come
   * oldest slot first.
   */
  async advance(steps: readonly StateStep[], nowMs: number): Promise<AdvanceResult> {
    const { keys, limits } = this;
    const args: (string | number)[] = [nowMs - limits.idleMs, limits.maxFieldsPerScope, limits.maxFields, limits.maxScopes, keys.otlpScope(''), steps.length];
    for (const s of steps) {
      args.push(s.scope, `g${digest(s.group)}`, s.slotMs, `${s.slotMs}|${s.timeNs}`, s.series.length);
      for (const x of s.series) args.push(`s${digest(`${s.group}\u0000${x.id}`)}`, encodeSeries(x.record));
    }
    const raw = (await this.redis.eval(ADVANCE, 3, keys.otlpScopes, keys.otlpFloors, keys.otlpStateMeta, ...args)) as string[];
    const outcomes: StepOutcome[] = [];
    let i = 3;
    for (const s of steps) {
      const kind = raw[i++];
      if (kind === 'stale' || kind === 'below_floor' || kind === 'baseline') {
        outcomes.push({ kind });
        continue;
      }
      if (kind !== 'next') throw new Error(`OTLP state script answered "${kind}" for a step`);
      const group = decodeGroup(raw[i++]!);
      const floorMs = Number(raw[i++]);
      const series = s.series.map(() => {
        const r = raw[i++]!;
        return r === '' ? undefined : decodeSeries(r);
      });
      outcomes.push({ kind, group, series, floorMs });
    }
    return { outcomes, evicted: { idle: Number(raw[0]), limit: Number(raw[1]), scopeLimit: Number(raw[2]) } };
  }

  /** What is held, and what was dropped so far: for metrics and tests. */
  async size(): Promise<{ scopes: number; fields: number; floors: number; floorMs: number; evicted: Record<string, number> }> {
    const { keys } = this;
    const [scopes, floors, meta] = await Promise.all([this.redis.zcard(keys.otlpScopes), this.redis.zcard(keys.otlpFloors), this.redis.hgetall(keys.otlpStateMeta)]);
    const evicted: Record<string, number> = {};
    for (const [k, v] of Object.entries(meta)) if (k.startsWith('evicted:')) evicted[k.slice('evicted:'.length)] = Number(v);
    return { scopes, fields: Number(meta.fields ?? 0), floors, floorMs: Number(meta.floor ?? 0), evicted };
  }
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function encodeSeries(r: SeriesRecord): string {
  return `${r.startNs}|${r.timeNs}|${String(r.value)}`;
}

function decodeSeries(text: string): SeriesRecord {
  const [start, time, value] = text.split('|');
  return { startNs: BigInt(start!), timeNs: BigInt(time!), value: Number(value) };
}

function decodeGroup(text: string): GroupRecord {
  const [slot, time] = text.split('|');
  return { slotMs: Number(slot), timeNs: BigInt(time!) };
}
