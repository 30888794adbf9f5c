/**
 * Replaying quarantined rows: they go back through the acceptor as new samples, so they
 * are validated by today's rules, take a new acceptance sequence (a billing period that
 * closed meanwhile bills them as adjustments, like any late sample) and a new batch job.
 * Rows that today's validation refuses stay in the quarantine with that reason, for an
 * operator to discard; the rest leave it once their new batch is acknowledged.
 *
 * Order: accept first, then shrink the entry. A crash between the two replays the same rows
 * again later; the first accepted copy of every id and natural key counts, so nothing is
 * billed twice.
 */
import type { Redis } from 'ioredis';
import { getQuarantine, removeQuarantine, replaceQuarantine, withRows, type QuarantineEntry } from '../domain/quarantine.js';
import type { RedisKeys } from '../schemas/queues.js';
import { decodeStoredRow, type RawRow } from '../schemas/raw-row.js';
import { UnreadableItem, type RejectedItem, type SampleSink } from './accept.js';

export class QuarantineNotFoundError extends Error {
  override name = 'QuarantineNotFoundError';
}

export interface ReplayOutcome {
  id: string;
  /** Rows accepted into a new batch. */
  accepted: number;
  batch_id?: string;
  /** Rows refused again, with today's reasons: they stay quarantined. */
  rejected: RejectedItem[];
  /** Rows still in the quarantine under this id. */
  remaining: number;
}

export async function replayQuarantined(redis: Redis, keys: RedisKeys, sink: SampleSink, id: string): Promise<ReplayOutcome> {
  const entry = await getQuarantine(redis, keys, id);
  if (!entry) throw new QuarantineNotFoundError(`nothing is quarantined under id ${id}`);
  const lines = entry.rows.split('\n').filter((l) => l !== '');
  const result = await sink.accept(lines.map((line) => sampleOfRow(entry, line)));
  const refused = new Set(result.rejected.map((r) => r.index));
  if (refused.size === 0) await removeQuarantine(redis, keys, id);
  else await replaceQuarantine(redis, keys, withRows(entry, lines.filter((_, i) => refused.has(i))));
  return { id, accepted: result.accepted, ...(result.batchId ? { batch_id: result.batchId } : {}), rejected: result.rejected, remaining: refused.size };
}

/** A stored row as the wire sample it was accepted as (values are exact decimals). */
export function sampleOfRow(entry: Pick<QuarantineEntry, 'rowFormat'>, line: string): unknown {
  let row: RawRow;
  try {
    row = decodeStoredRow(line, entry.rowFormat);
  } catch {
    return new UnreadableItem('this quarantined row cannot be decoded; discard it');
  }
  return {
    id: row.id,
    account_id: row.account_id,
    resource_id: row.resource_id,
    resource_type: row.resource_type,
    region: row.region,
    metric: row.metric,
    value: Number(row.value),
    ts: row.ts,
    interval_s: row.interval_s,
    attributes: row.attributes,
    // Provenance travels with the row (0090); rows stored before it have none: measured.
    ...(row.estimated ? { estimated: row.estimated } : {}),
  };
}
