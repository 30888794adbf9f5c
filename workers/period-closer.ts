/**
 * Closes billing periods, oldest first, once their grace has passed. Closing is a small
 * state machine whose every step can be repeated after a crash:
 *
 *   1. start closing: read the acceptance sequence counter as close_seq and record it.
 *      Every batch numbered up to it is already in the in-flight set (ingest takes the
 *      number and the in-flight mark atomically), and every later sample for the period
 *      is late: the rollup bills it as an adjustment in a later period;
 *   2. mark the period's hours dirty, so they are recomputed with the split;
 *   3. wait until no batch numbered up to close_seq is in flight and no hour before the
 *      period's end is dirty: the on-time totals are then final, and so are the
 *      adjustments billed into this period from earlier ones;
 *   4. fingerprint the period's export and record the period as closed.
 */
import { z } from 'zod';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { bumpPeriodsVersion, markHoursDirty, outstanding, readCloseSequence } from '../domain/ledger.js';
import { issueRowVersion } from '../domain/row-versions.js';
import { withLock } from '../lib/locks.js';
import { PeriodicTask } from '../lib/periodic.js';
import { catchUp } from './replica-barrier.js';
import { exportDigest } from '../domain/period-export.js';
import { loadPeriodStates, nextPeriod, toDateString, type PeriodState } from '../domain/periods.js';
import type { RedisKeys } from '../schemas/queues.js';

export interface PeriodCloserDeps {
  ch: ClickHouseClient;
  redis: Redis;
  keys: RedisKeys;
  log: Logger;
  graceMs: number;
  intervalMs: number;
  now?: () => number;
  /** This host's wall clock, the floor of the row versions it takes (default Date.now; tests skew it). */
  clock?: () => number;
  /** Server mode: catch up on a new write replica before closing anything (replica-barrier.ts). */
  replicaBarrier?: boolean;
}

export class PeriodCloser {
  /** Periods whose hours this process has marked dirty since it (re)started closing them. */
  private readonly marked = new Set<string>();
  private readonly task: PeriodicTask;

  constructor(private readonly deps: PeriodCloserDeps) {
    this.task = new PeriodicTask('period close round', deps.intervalMs, () => this.runOnce(), deps.log);
  }

  start(): void {
    this.task.start();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** Advances every due period as far as it can go now. Returns the periods closed. */
  async runOnce(): Promise<string[]> {
    const { redis, keys } = this.deps;
    const result = await withLock(redis, keys.periodCloseLock, async () => {
      // A close fingerprints the period's totals: never from a replica that has not caught up.
      if (this.deps.replicaBarrier) {
        const c = await catchUp(this.deps.ch, redis, keys);
        if (c.changed) this.deps.log.info({ replica: c.replica, synced: c.synced }, 'period closer caught up on a new write replica');
      }
      const closed: string[] = [];
      for (const period of await this.duePeriods()) {
        const done = await this.advance(period);
        if (!done) break; // periods close in order: a later one waits for this one
        closed.push(period);
      }
      return closed;
    });
    return result?.value ?? []; // another worker is closing periods
  }

  /** Every month from the first one with data up to the last whose grace has passed, not yet closed. */
  private async duePeriods(): Promise<string[]> {
    const now = (this.deps.now ?? Date.now)();
    const [first] = await queryRows(
      this.deps.ch,
      z.object({ first: z.string() }),
      "SELECT toString(toStartOfMonth(min(hour))) AS first FROM billing.usage_hourly HAVING count() > 0",
    );
    if (!first) return [];
    const states = new Map((await loadPeriodStates(this.deps.ch)).map((s) => [s.period, s]));
    const due: string[] = [];
    for (let p = Date.parse(`${first.first}T00:00:00Z`); nextPeriod(p) + this.deps.graceMs <= now; p = nextPeriod(p)) {
      const label = toDateString(p);
      if (states.get(label)?.status !== 'closed') due.push(label);
    }
    return due;
  }

  private async advance(period: string): Promise<boolean> {
    const { ch, redis, keys, log } = this.deps;
    let state = (await loadPeriodStates(ch)).find((s) => s.period === period);
    if (!state) {
      const closeSeq = await readCloseSequence(redis, keys);
      state = { period, status: 'closing', close_seq: closeSeq, closed_at: null, export_sha256: '' };
      await this.writeState(state);
      log.info({ period, closeSeq }, 'billing period closing: later samples become adjustments');
    }
    if (!this.marked.has(period)) {
      // Bumped here, before the hours are marked, and not only right after the state is
      // written: if a crash or a Redis error came between writing the state and bumping,
      // the rollup's cached states would still show the period open for a while, and it
      // could recompute a marked hour without the split and clear its mark, and the
      // period would close with late usage in it. A rollup round reads the version after
      // the dirty hours, so one that sees these marks sees the closing state.
      await bumpPeriodsVersion(redis, keys);
      await this.markHoursDirty(period);
      this.marked.add(period);
    }
    const endS = nextPeriod(Date.parse(`${period}T00:00:00Z`)) / 1000;
    // Step 3: the ledger's one definition of complete, for every hour before the period's
    // end and the batches numbered up to its close sequence (a later one is an adjustment).
    if ((await outstanding(redis, keys, { fromS: 0, toS: endS, throughSeq: state.close_seq })).length > 0) return false;

    const digest = await exportDigest(ch, period.slice(0, 7));
    await this.writeState({ ...state, status: 'closed', closed_at: new Date((this.deps.now ?? Date.now)()).toISOString(), export_sha256: digest });
    await bumpPeriodsVersion(redis, keys);
    this.marked.delete(period);
    log.info({ period, sha256: digest }, 'billing period closed');
    return true;
  }

  /**
   * A period's state under a version from the ledger's counter, taken under the closer's
   * lock: 'closed' is written after 'closing', so it outranks it whatever this host's
   * clock says, and whichever host wrote 'closing'.
   */
  private async writeState(s: PeriodState): Promise<void> {
    const { ch, redis, keys } = this.deps;
    const version = await issueRowVersion(ch, redis, keys, (this.deps.clock ?? Date.now)());
    await ch.insert({
      table: 'billing.periods',
      format: 'JSONEachRow',
      values: [{ ...s, closed_at: s.closed_at ? Date.parse(s.closed_at) : null, version }],
    });
  }

  private async markHoursDirty(period: string): Promise<void> {
    const start = Date.parse(`${period}T00:00:00Z`) / 1000;
    const hours = await queryRows(
      this.deps.ch,
      z.object({ h: z.coerce.number().int() }),
      `SELECT DISTINCT toUnixTimestamp(usage_hour) AS h FROM billing.samples_raw
       WHERE usage_hour >= {start:DateTime('UTC')} AND usage_hour < {end:DateTime('UTC')}`,
      { start, end: nextPeriod(start * 1000) / 1000 },
    );
    await markHoursDirty(this.deps.redis, this.deps.keys, hours.map((r) => r.h));
  }
}
