/**
 * Account lifecycle for retention: an account is active until terminated; its usage is
 * then kept ACCOUNT_RETENTION_MONTHS more (billing and support history, policy §8) and
 * erased after that by the retention sweep.
 */
import { z } from 'zod';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';

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

export async function terminateAccount(ch: ClickHouseClient, account: string, nowMs: number, retentionMonths: number): Promise<AccountState> {
  const state: AccountState = {
    account_id: account,
    status: 'terminated',
    terminated_at: new Date(nowMs).toISOString(),
    delete_after: new Date(addMonthsUtc(nowMs, retentionMonths)).toISOString(),
  };
  await ch.insert({
    table: 'billing.accounts',
    format: 'JSONEachRow',
    values: [{ ...state, terminated_at: nowMs, delete_after: addMonthsUtc(nowMs, retentionMonths), version: Date.now() * 1000 }],
  });
  return state;
}

export async function accountState(ch: ClickHouseClient, account: string): Promise<AccountState> {
  const [row] = await queryRows<unknown>(
    ch,
    'SELECT account_id, status, terminated_at, delete_after FROM billing.accounts FINAL WHERE account_id = {account:String}',
    { account },
  );
  return row ? stateSchema.parse(row) : { account_id: account, status: 'active', terminated_at: null, delete_after: null };
}

/** Terminated accounts whose retention has run out: due for erasure. */
export async function accountsDueForErasure(ch: ClickHouseClient, nowMs: number): Promise<string[]> {
  const rows = await queryRows<{ account_id: string }>(
    ch,
    `SELECT account_id FROM billing.accounts FINAL
     WHERE status = 'terminated' AND delete_after <= fromUnixTimestamp64Milli({now:Int64}, 'UTC')`,
    { now: nowMs },
  );
  return rows.map((r) => r.account_id);
}
