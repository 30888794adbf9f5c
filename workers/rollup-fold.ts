/**
 * Folds the rows written since the last round (acceptance sequence from < seq <= through)
 * into their hours' billing aggregates and ingest stats, all hours in one statement per
 * table. The cost follows the new rows, plus one scan of an 8-byte hash over the hours to
 * find earlier copies by id (by natural key, the ts index narrows it to a few granules;
 * rarely, one more scan for the closure);
 * see rollup-fold-sql.ts for why the result equals a whole-hour recomputation.
 *
 * The earlier copies travel to the fold statements as a bound parameter, and a server
 * takes query parameters in the URL (a field over 128 KiB is refused). Above a bound
 * (URL_PARAM_BUDGET, ~4,000 positions) the round does not fold those hours: it hands them
 * to the whole-hour recomputation, which reads the hour in the engine and sends nothing
 * row-sized. That happens when a batch already folded is re-sent whole, which is rare;
 * every ordinary round keeps the cheap path.
 */
import { z } from 'zod';
import { TupleParam } from '@clickhouse/client';
import { queryRows, stringElementSize, URL_PARAM_BUDGET, type ClickHouseClient } from '../lib/clickhouse.js';
import { EARLIER_BY_ID_SQL, EARLIER_COPIES_SQL, FOLD_STATS_SQL, FOLD_USAGE_SQL, FRESH_HOURS_SQL } from './rollup-fold-sql.js';

export type FoldRange = {
  /** Usage hours, epoch seconds. */
  hours: number[];
  from: number;
  through: number;
};

export interface FoldResult {
  /** Hours that had rows in the range and were folded, and how many rows (copies included). */
  hours: number[];
  /** Hours whose earlier copies were too many to send: recompute them whole instead. */
  tooWide: number[];
  rows: number;
  /** Earlier rows consulted to decide which copies count. */
  earlier: number;
}

/** A copy's position in acceptance order: batch_seq is a UInt64, so it comes as a string. */
const copySchema = z.object({ batch_seq: z.string(), item: z.coerce.number() });

/** Hours per fold statement: their list is a URL parameter too (~11 bytes an hour). */
const MAX_HOURS_PER_STATEMENT = 4096;

/** The earlier copies would not fit in a URL parameter: recompute the hours whole. */
class TooWide extends Error {}

export async function foldHours(ch: ClickHouseClient, range: FoldRange, version: number): Promise<FoldResult> {
  const result: FoldResult = { hours: [], tooWide: [], rows: 0, earlier: 0 };
  if (range.hours.length === 0 || range.through <= range.from) return result;
  for (let i = 0; i < range.hours.length; i += MAX_HOURS_PER_STATEMENT) {
    const slice = { ...range, hours: range.hours.slice(i, i + MAX_HOURS_PER_STATEMENT) };
    const fresh = await queryRows(ch, z.object({ hour: z.coerce.number(), rows: z.coerce.number() }), FRESH_HOURS_SQL, slice);
    const hours = fresh.map((r) => Number(r.hour)).sort((a, b) => a - b);
    const rows = fresh.reduce((n, r) => n + Number(r.rows), 0);
    if (rows === 0) continue;
    const narrowed = { ...slice, hours };
    let earlier: TupleParam[];
    try {
      earlier = await earlierPositions(ch, narrowed);
    } catch (err) {
      if (!(err instanceof TooWide)) throw err;
      result.tooWide.push(...hours);
      continue;
    }
    const params = { ...narrowed, earlier, version };
    await ch.command({ query: FOLD_USAGE_SQL, query_params: params });
    await ch.command({ query: FOLD_STATS_SQL, query_params: params });
    result.hours.push(...hours);
    result.rows += rows;
    result.earlier += earlier.length;
  }
  return result;
}

/** (batch_seq, item) of the earlier rows the fold must consult (rollup-fold-sql.ts). */
export async function earlierPositions(ch: ClickHouseClient, range: FoldRange): Promise<TupleParam[]> {
  // Nothing is accepted at or below sequence 0: no scan.
  if (range.from === 0) return [];
  const copies = await queryRows(ch, copySchema.extend({ id: z.string(), by_id: z.coerce.number() }), EARLIER_COPIES_SQL, range);
  const positions = new Map<string, [number, number]>();
  const keyOf = (r: { batch_seq: string; item: number }) => `${r.batch_seq}:${r.item}`;
  const add = (r: { batch_seq: string; item: number }) => positions.set(keyOf(r), [Number(r.batch_seq), Number(r.item)]);
  const byId = copies.filter((r) => Number(r.by_id));
  byId.forEach(add);
  // A copy found by its key alone has an id no fresh row has: the rows sharing that id
  // decide whether it counted, and the scan by id did not look for them.
  const keyOnly = [...new Set(copies.filter((r) => !Number(r.by_id) && !positions.has(keyOf(r))).map((r) => r.id))];
  copies.forEach(add);
  if (keyOnly.length > 0) {
    if (keyOnly.reduce((n, id) => n + stringElementSize(id), 2) > URL_PARAM_BUDGET) throw new TooWide();
    (await queryRows(ch, copySchema, EARLIER_BY_ID_SQL, { ...range, ids: keyOnly })).forEach(add);
  }
  // A position "(batch_seq,item)," is at most ~40 bytes URL-encoded: a cheap upper bound.
  if (2 + positions.size * 40 > URL_PARAM_BUDGET) throw new TooWide();
  return [...positions.values()].map((p) => new TupleParam(p));
}
