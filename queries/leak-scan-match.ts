/**
 * The leak scanner's matching, split from reading (leak-scan.ts, leak-scan-files.ts) so
 * that analytics tables and export files are judged by exactly the same rules: one
 * column's distinct values against the identifiers present in billing data (whole or as a
 * token inside a value), against the fingerprints of identifiers erased since
 * (domain/erased-identifiers.ts), and against identifier patterns (e-mail, IP address,
 * host name, ARN, UUID, long random token).
 */
import { z } from 'zod';
import type { ErasedFingerprints } from '../domain/erased-identifiers.js';
import { paramRuns, queryRows, stringElementSize, URL_PARAM_BUDGET, type ClickHouseClient } from '../lib/clickhouse.js';
import { LIMITS } from '../schemas/sample.js';

export interface LeakHit {
  /** `analytics.table.column`, or `file:column`. */
  source: string;
  value: string;
  reason: string;
}

export interface CheckContext {
  ch: ClickHouseClient;
  /** The erased list, when the scan consults it. */
  erased?: ErasedFingerprints;
}

const PATTERNS: [string, RegExp][] = [
  ['e-mail address', /[^\s@,;]+@[^\s@,;]+\.[a-z]{2,}/i],
  ['IPv4 address', /\b\d{1,3}(\.\d{1,3}){3}\b/],
  ['IPv6 address', /\b[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,7}\b/i],
  ['host name', /\b[a-z0-9-]+(\.[a-z0-9-]+)*\.(com|net|org|io|co|dev|cloud|internal|local|lan|corp|example)\b/i],
  ['ARN', /\barn:[a-z0-9-]+:/i],
  ['UUID', /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/i],
  ['long random token', /[A-Za-z0-9+/_-]{24,}|[0-9a-f]{16,}/i],
];

const NUMBER_OR_TIME = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$|^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Distinct values kept per column: analytics columns are low-cardinality by design. */
export const MAX_VALUES_PER_SOURCE = 200_000;

// Every identifier billing knows, as one set ClickHouse can probe.
const KNOWN_IDENTIFIERS = `
  SELECT account_id AS id FROM billing.usage_hourly UNION DISTINCT
  SELECT resource_id FROM billing.usage_hourly UNION DISTINCT
  SELECT account_id FROM billing.samples_raw UNION DISTINCT
  SELECT resource_id FROM billing.samples_raw UNION DISTINCT
  SELECT id FROM billing.samples_raw`;

/** The longest identifier billing can hold (ingest's limit on resource ids; ids and accounts are shorter). */
const MAX_IDENTIFIER_CHARS = LIMITS.resourceIdLength;
/** The scanner's token rule, the same as splitByRegexp below. */
const TOKEN_SEPARATORS = /[^A-Za-z0-9_.:@/-]+/;

/**
 * Values that are, or contain as a token, a known identifier. The values travel as a
 * query parameter, that is in the URL: in runs of at most URL_PARAM_BUDGET encoded bytes
 * (a server refuses a field over 128 KiB). A value too long for a run of its own is longer
 * than any identifier, so it can only hold one as a token: its tokens of identifier length
 * are sent in its place.
 */
async function identifierHits(ch: ClickHouseClient, values: string[]): Promise<Map<string, string>> {
  const hits = new Map<string, string>();
  const probes: Array<{ probe: string; value: string }> = [];
  for (const value of values) {
    if (stringElementSize(value) <= URL_PARAM_BUDGET / 4) probes.push({ probe: value, value });
    else for (const tok of new Set(value.split(TOKEN_SEPARATORS))) if (tok !== '' && tok.length <= MAX_IDENTIFIER_CHARS) probes.push({ probe: tok, value });
  }
  for (const run of paramRuns(probes, (p) => stringElementSize(p.probe))) {
    const rows = await queryRows(
      ch,
      z.object({ v: z.string(), tok: z.string() }),
      `SELECT v, tok FROM (SELECT arrayJoin({values:Array(String)}) AS v)
       ARRAY JOIN arrayDistinct(arrayPushFront(splitByRegexp('[^A-Za-z0-9_.:@/-]+', v), v)) AS tok
       WHERE tok != '' AND tok IN (${KNOWN_IDENTIFIERS})`,
      { values: [...new Set(run.map((p) => p.probe))] },
    );
    const found = new Map(rows.map((r) => [r.v, r.tok]));
    for (const p of run) {
      const tok = found.get(p.probe);
      if (tok !== undefined && !hits.has(p.value)) hits.set(p.value, tok);
    }
  }
  return hits;
}

/** Values that are, or contain as a token, an erased identifier (by fingerprint). */
async function erasedHits(erased: ErasedFingerprints, values: string[]): Promise<Map<string, { token: string; kind: 'account' | 'identifier' }>> {
  const hits = new Map<string, { token: string; kind: 'account' | 'identifier' }>();
  // In runs, so the token list of 200,000 long values never sits in memory at once.
  for (let i = 0; i < values.length; i += 2000) {
    const run = values.slice(i, i + 2000);
    const tokensOf = run.map((v) => [v, ...new Set(v.split(TOKEN_SEPARATORS))].filter((t) => t !== '' && t.length <= MAX_IDENTIFIER_CHARS));
    const found = await erased.lookup(tokensOf.flat());
    if (found.size === 0) continue;
    run.forEach((v, j) => {
      const token = tokensOf[j]!.find((t) => found.has(t));
      if (token !== undefined) hits.set(v, { token, kind: found.get(token)! });
    });
  }
  return hits;
}

/** One column's hits: live identifiers first, then erased ones (not already hit), then patterns. */
export async function checkValues(ctx: CheckContext, source: string, values: string[]): Promise<LeakHit[]> {
  const hits: LeakHit[] = [];
  const live = await identifierHits(ctx.ch, values);
  for (const [value, token] of live) {
    hits.push({ source, value, reason: `holds the billing identifier ${JSON.stringify(token)}` });
  }
  if (ctx.erased) {
    for (const [value, { token, kind }] of await erasedHits(ctx.erased, values)) {
      if (live.has(value)) continue;
      const what = kind === 'account' ? 'the id of an erased account' : 'an identifier an erasure removed (resource id)';
      hits.push({ source, value, reason: `holds ${JSON.stringify(token)}, ${what} (fingerprint match)` });
    }
  }
  for (const value of values) {
    // Numbers and timestamps are measurements, not identifiers (and look like tokens or IPv6).
    if (NUMBER_OR_TIME.test(value)) continue;
    const pattern = PATTERNS.find(([, re]) => re.test(value));
    if (pattern) hits.push({ source, value, reason: `looks like ${pattern[0]}` });
  }
  return hits;
}
