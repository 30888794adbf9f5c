/**
 * Account lifecycle for retention: an account is active until terminated; its usage is
 * then kept ACCOUNT_RETENTION_MONTHS more (billing and support history, policy §8) and
 * erased after that by the retention sweep.
 */
import { z } from 'zod';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { fromClickHouseDateTime, toIso } from '../lib/time.js';
import { accountIdSchema } from '../schemas/sample.js';

export interface AccountState {
  account_id: string;
  status: 'active' | 'terminated';
  terminated_at: string | null;
  delete_after: string | null;
}

const stateSchema = z.object({
  account_id: z.string(),
  status: z.enum(['active', 'terminated']),
  terminated_at: z.string().nullable(),
  delete_after: z.string().nullable(),
});

export function addMonthsUtc(ms: number, months: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds());
}

/**
 * The version a lifecycle row carries. billing.accounts is a ReplacingMergeTree(version):
 * the row with the highest version is the account's state. Deriving the version from the
 * deadline, earliest deadline highest, makes "a deadline only moves earlier" hold in the
 * table itself, whatever order concurrent terminations land in. The base sits above the
 * wall-clock versions (ms × 1000, ~1.8e15 today) written before this rule, so a new row
 * outranks an old one, and below 2^53 so the number is exact in JavaScript and JSON.
 */
const VERSION_BASE = 9_000_000_000_000_000;
export function lifecycleVersion(deleteAfterMs: number): number {
  return VERSION_BASE - deleteAfterMs;
}

export interface TerminationResult extends AccountState {
  /** True when the account was already terminated before this request. */
  already_terminated: boolean;
  /** `set`: this request set the erasure deadline; `kept`: an earlier one stands. */
  deadline: 'set' | 'kept';
  message: string;
}

/**
 * Terminates an account: its usage is erased `retentionMonths` after now. Terminating it
 * again never postpones that: a later deadline is not written, and the response says the
 * earlier one was kept (it used to restart the clock, so repeated calls deferred erasure
 * for ever). A shorter retention configured since does move the deadline earlier.
 */
export async function terminateAccount(ch: ClickHouseClient, account: string, nowMs: number, retentionMonths: number): Promise<TerminationResult> {
  const current = await accountState(ch, account);
  const deleteAfterMs = addMonthsUtc(nowMs, retentionMonths);
  // The engine prints DateTime64 as `2026-11-29 07:00:00.000`, in UTC.
  const currentDeadline = current.status === 'terminated' && current.delete_after !== null ? fromClickHouseDateTime(current.delete_after) : undefined;
  const currentTerminatedAt = current.terminated_at !== null ? fromClickHouseDateTime(current.terminated_at) : nowMs;
  const wasTerminated = currentDeadline !== undefined;
  if (currentDeadline !== undefined && currentDeadline <= deleteAfterMs) {
    const terminatedAt = toIso(currentTerminatedAt);
    const deleteAfter = toIso(currentDeadline);
    return {
      account_id: account,
      status: 'terminated',
      terminated_at: terminatedAt,
      delete_after: deleteAfter,
      already_terminated: true,
      deadline: 'kept',
      message: `already terminated at ${terminatedAt}: the erasure deadline ${deleteAfter} stands (terminating again never postpones it)`,
    };
  }
  // The first termination instant is kept: it is when the customer left.
  const terminatedAtMs = wasTerminated ? Math.min(currentTerminatedAt, nowMs) : nowMs;
  await ch.insert({
    table: 'billing.accounts',
    format: 'JSONEachRow',
    values: [{ account_id: account, status: 'terminated', terminated_at: terminatedAtMs, delete_after: deleteAfterMs, version: lifecycleVersion(deleteAfterMs) }],
  });
  return {
    account_id: account,
    status: 'terminated',
    terminated_at: new Date(terminatedAtMs).toISOString(),
    delete_after: new Date(deleteAfterMs).toISOString(),
    already_terminated: wasTerminated,
    deadline: 'set',
    message: wasTerminated
      ? `already terminated: the erasure deadline moves earlier, to ${new Date(deleteAfterMs).toISOString()} (the retention configured now is shorter)`
      : `terminated: usage is erased after ${new Date(deleteAfterMs).toISOString()}`,
  };
}

export async function accountState(ch: ClickHouseClient, account: string): Promise<AccountState> {
  const [row] = await queryRows(
    ch,
    stateSchema,
    'SELECT account_id, status, terminated_at, delete_after FROM billing.accounts FINAL WHERE account_id = {account:String}',
    { account },
  );
  return row ?? { account_id: account, status: 'active', terminated_at: null, delete_after: null };
}

/** Terminated accounts whose retention has run out: due for erasure. */
export async function accountsDueForErasure(ch: ClickHouseClient, nowMs: number): Promise<string[]> {
  const rows = await queryRows(
    ch,
    z.object({ account_id: z.string() }),
    `SELECT account_id FROM billing.accounts FINAL
     WHERE status = 'terminated' AND delete_after <= fromUnixTimestamp64Milli({now:Int64}, 'UTC')`,
    { now: nowMs },
  );
  return rows.map((r) => r.account_id);
}

/**
 * The account named in a URL path, checked by the same rule ingest applies to account_id
 * (schemas/sample.ts: well-formed Unicode, no control characters, 1–128 characters), so an
 * account ingest accepted can always be read, exported and erased, and a path can name
 * nothing ingest would refuse (a terminate row was once written for `a\u0000b`).
 */
export function parseAccountParam(raw: unknown): { account: string } | { error: string } {
  const parsed = accountIdSchema.safeParse(raw);
  if (parsed.success) return { account: parsed.data };
  return { error: `the account in the path: ${parsed.error.issues.map((i) => i.message).join('; ')}` };
}
