/**
 * Access and portability (policy §9): everything held about an account's usage, streamed
 * as one JSON document or as CSV with a record_type column. Rows are read in pages so a
 * large account never sits in memory. CSV cells follow export/csv.ts: ids and attributes a
 * producer wrote that look like spreadsheet formulas are neutralized.
 *
 * Instants are RFC 3339 in UTC with `Z` (the engine prints `2026-11-29 07:00:00.000`, with
 * no zone); calendar days (`billed_period`, `accepted_date`) stay `YYYY-MM-DD`. Provenance
 * is part of what is held: each sample's `estimated` ('' = measured, `held`), and per
 * hour the seconds covered (`covered_s`) and, of those, held (`held_s`).
 */
import type { ClickHouseClient } from '../lib/clickhouse.js';
import { CURRENT_ADJUSTMENTS } from '../domain/adjustments.js';
import { accountState, type AccountState } from '../domain/accounts.js';
import { fromClickHouseDateTime, toIso } from '../lib/time.js';
import { csvLine } from './export/csv.js';

interface Section {
  name: string;
  sql: string;
  /** Columns holding an instant, written in RFC 3339 with Z. */
  instants: readonly string[];
}

const SECTIONS: Section[] = [
  {
    name: 'hourly_usage',
    sql: `SELECT hour, metric, resource_id, resource_type, region, toString(base_total) AS base_total, samples, covered_s, held_s
          FROM billing.usage_hourly FINAL WHERE account_id = {account:String} ORDER BY hour, metric, resource_id`,
    instants: ['hour'],
  },
  {
    name: 'adjustments',
    sql: `SELECT billed_period, hour, metric, resource_id, region, accepted_date, toString(base_total) AS base_total, samples
          FROM (${CURRENT_ADJUSTMENTS}) WHERE account_id = {account:String} ORDER BY billed_period, hour, metric, resource_id`,
    instants: ['hour'],
  },
  {
    name: 'samples',
    sql: `SELECT id, resource_id, resource_type, region, metric, ts, interval_s, toString(value) AS value, attributes, estimated, accepted_at
          FROM billing.samples_raw WHERE account_id = {account:String} ORDER BY usage_hour, resource_id, metric, ts`,
    instants: ['ts', 'accepted_at'],
  },
];

/** An engine DateTime string as RFC 3339 with Z; anything else (null) as it is. */
function instant(v: unknown): unknown {
  return typeof v === 'string' ? toIso(fromClickHouseDateTime(v)) : v;
}

async function* sectionRows(ch: ClickHouseClient, section: Section, account: string): AsyncGenerator<Record<string, unknown>> {
  const rs = await ch.query({ query: section.sql, query_params: { account }, format: 'JSONEachRow' });
  for await (const rows of rs.stream()) {
    for (const row of rows) {
      const rec = row.json<Record<string, unknown>>();
      for (const c of section.instants) rec[c] = instant(rec[c]);
      yield rec;
    }
  }
}

function lifecycleOf(state: AccountState): AccountState {
  return { ...state, terminated_at: instant(state.terminated_at) as string | null, delete_after: instant(state.delete_after) as string | null };
}

export async function* exportAccountJson(ch: ClickHouseClient, account: string): AsyncGenerator<string> {
  const lifecycle = lifecycleOf(await accountState(ch, account));
  yield `{"account":${JSON.stringify(account)},"generated_at":${JSON.stringify(new Date().toISOString())},"lifecycle":${JSON.stringify(lifecycle)}`;
  for (const section of SECTIONS) {
    yield `,${JSON.stringify(section.name)}:[`;
    let first = true;
    for await (const row of sectionRows(ch, section, account)) {
      yield (first ? '' : ',') + JSON.stringify(row);
      first = false;
    }
    yield ']';
  }
  yield '}\n';
}

const CSV_COLUMNS = [
  'record_type', 'hour', 'billed_period', 'ts', 'id', 'metric', 'resource_id', 'resource_type', 'region', 'interval_s', 'value',
  'base_total', 'samples', 'covered_s', 'held_s', 'estimated', 'accepted_date', 'accepted_at', 'attributes',
];

export async function* exportAccountCsv(ch: ClickHouseClient, account: string): AsyncGenerator<string> {
  yield CSV_COLUMNS.join(',') + '\n';
  for (const section of SECTIONS) {
    for await (const row of sectionRows(ch, section, account)) {
      const rec: Record<string, unknown> = { ...row, record_type: section.name };
      yield csvLine(CSV_COLUMNS.map((c) => rec[c]));
    }
  }
}
