/**
 * Hostile query parameters on every GET route: each gets a 4xx with the API's error shape
 * and a message that names what was wrong, never a 500. The table pins the status and the
 * message for the cases that used to reach the engine (from=0 on usage, from=2026-13-45 on
 * the audit trail, …); the sweep after it throws every hostile value at every parameter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, startTestPipeline, type TestPipeline } from '../support/pipeline.js';

interface Case {
  path: string;
  status: number;
  /** The error code, when the case pins it. */
  code?: string;
  message: RegExp;
  key?: string;
}

const U = '/v1/accounts/acct-1/usage';
const C = '/v1/accounts/acct-1/coverage';
const E = '/v1/accounts/acct-1/export';
const DS = '/v1/analytics/datasets/fleet-demand';

const CASES: Case[] = [
  // usage: time bounds
  { path: `${U}?from=0`, status: 400, code: 'invalid_query', message: /from must be from 2000-01-01/ },
  { path: `${U}?to=0`, status: 400, message: /to must be from 2000-01-01/ },
  { path: `${U}?to=3600000`, status: 400, message: /to must be from 2000-01-01/ },
  { path: `${U}?from=1969-12-31T23:00:00Z&to=2026-01-01`, status: 400, message: /from must be from 2000-01-01/ },
  { path: `${U}?from=`, status: 400, message: /from must be RFC 3339/ },
  { path: `${U}?from=NaN`, status: 400, message: /from must be RFC 3339/ },
  { path: `${U}?from=-3600000`, status: 400, message: /from must be RFC 3339/ },
  { path: `${U}?from=1e10`, status: 400, message: /from must be RFC 3339/ },
  { path: `${U}?from=99999999999999999999`, status: 400, message: /from must be RFC 3339/ },
  { path: `${U}?from=2026-13-45`, status: 400, message: /from must be RFC 3339/ },
  { path: `${U}?from=2026-02-30`, status: 400, message: /from must be RFC 3339/ },
  { path: `${U}?from=2026-01-01T00:00:00`, status: 400, message: /from must be RFC 3339 with a time zone/ },
  { path: `${U}?from=9999-12-31`, status: 400, message: /up to 2106-01-01/ },
  { path: `${U}?from=2026-01-01T00:30:00Z&to=2026-01-02`, status: 400, message: /whole hour/ },
  { path: `${U}?from=2026-02-01&to=2026-01-01`, status: 400, message: /from must be before to/ },
  { path: `${U}?from=2026-01-01&to=2026-01-01`, status: 400, message: /from must be before to/ },
  { path: `${U}?from=2000-01-01&to=2105-12-31`, status: 400, message: /at most 400 days/ },
  { path: `${U}?from=2026-01-01&from=2026-01-02&to=2026-02-01`, status: 400, message: /from must be given once/ },
  // usage: the other parameters
  { path: `${U}?granularity=week`, status: 400, message: /granularity must be one of hour, day, month, total/ },
  { path: `${U}?granularity=hour&granularity=day`, status: 400, message: /granularity must be one of/ },
  { path: `${U}?group_by=customer`, status: 400, message: /group_by accepts metric, resource_id, region; not customer/ },
  { path: `${U}?group_by=region&group_by=metric`, status: 400, message: /group_by must be given once/ },
  { path: `${U}?group_by=${'region,'.repeat(100)}`, status: 400, message: /group_by must be at most 200 characters/ },
  { path: `${U}?limit=10`, status: 400, message: /unknown parameter limit/ },
  // coverage
  { path: `${C}?period=2026-13`, status: 400, code: 'invalid_query', message: /period must be a month, YYYY-MM/ },
  { path: `${C}?period=0000-01`, status: 400, message: /period must be a month from 2000-01 to 2105-12/ },
  { path: `${C}?period=9999-12`, status: 400, message: /period must be a month from 2000-01 to 2105-12/ },
  { path: `${C}?period=`, status: 400, message: /period must be a month/ },
  { path: `${C}?period=2026-01&period=2026-02`, status: 400, message: /period must be given once/ },
  { path: `${C}?from=2026-01-01`, status: 400, message: /unknown parameter from/ },
  // producers
  { path: '/v1/producers?producer=x', status: 400, message: /unknown parameter producer/ },
  // the billing export
  { path: '/v1/usage', status: 400, message: /give period=YYYY-MM, or both from and to/ },
  { path: '/v1/usage?period=2026-13', status: 400, message: /period must be a month, YYYY-MM/ },
  { path: '/v1/usage?period=1999-12', status: 400, message: /period must be a month from 2000-01/ },
  { path: '/v1/usage?period=2106-01', status: 400, message: /period must be a month from 2000-01 to 2105-12/ },
  { path: '/v1/usage?period=2026-01&period=2026-02', status: 400, message: /period must be given once/ },
  { path: '/v1/usage?period=2026-01&from=2026-01-01&to=2026-02-01', status: 400, message: /either period, or from and to/ },
  { path: '/v1/usage?from=0&to=3600000', status: 400, message: /from must be from 2000-01-01/ },
  { path: '/v1/usage?from=2026-02-01&to=2026-01-01', status: 400, message: /from must be before to/ },
  { path: '/v1/usage?from=2000-01-01&to=2105-01-01', status: 400, message: /at most 400 days/ },
  { path: '/v1/usage?from=2026-01-01', status: 400, message: /both from and to/ },
  { path: '/v1/usage?period=2026-01&limit=0', status: 400, message: /limit must be at least 1/ },
  { path: '/v1/usage?period=2026-01&limit=-1', status: 400, message: /limit must be a whole number/ },
  { path: '/v1/usage?period=2026-01&limit=abc', status: 400, message: /limit must be a whole number/ },
  { path: '/v1/usage?period=2026-01&limit=99999999999999999999', status: 400, message: /limit/ },
  { path: '/v1/usage?period=2026-01&limit=1&limit=2', status: 400, message: /limit must be given once/ },
  { path: '/v1/usage?period=2026-01&cursor=garbage', status: 400, code: 'invalid_cursor', message: /cursor is not one this export issued/ },
  { path: `/v1/usage?period=2026-01&cursor=${'A'.repeat(3000)}`, status: 400, message: /cursor must be at most 2048 characters/ },
  { path: '/v1/usage?period=2026-01&format=xml', status: 400, message: /format must be ndjson or csv/ },
  { path: '/v1/usage?period=2026-01&group_by=account_id', status: 400, message: /group_by accepts resource_id, region/ },
  { path: '/v1/usage?period=2026-01&sort=asc', status: 400, message: /unknown parameter sort/ },
  // the account export
  { path: `${E}?format=xml`, status: 400, code: 'invalid_query', message: /format must be json or csv/, key: KEYS.privacy },
  { path: `${E}?format=csv&format=json`, status: 400, message: /format must be json or csv, given once/, key: KEYS.privacy },
  { path: `${E}?since=2026-01-01`, status: 400, message: /unknown parameter since/, key: KEYS.privacy },
  // the audit trail
  { path: '/v1/audit?from=2026-13-45', status: 400, code: 'invalid_query', message: /from must be RFC 3339/, key: KEYS.privacy },
  { path: '/v1/audit?to=2026-13-45', status: 400, message: /to must be RFC 3339/, key: KEYS.privacy },
  { path: '/v1/audit?from=99999999999999999999', status: 400, message: /from must be RFC 3339/, key: KEYS.privacy },
  { path: '/v1/audit?from=0', status: 400, message: /from must be from 2000-01-01/, key: KEYS.privacy },
  { path: '/v1/audit?to=9999-12-31', status: 400, message: /up to 2106-01-01/, key: KEYS.privacy },
  { path: '/v1/audit?from=2026-02-01&to=2026-01-01', status: 400, message: /from must be before to/, key: KEYS.privacy },
  { path: '/v1/audit?limit=0', status: 400, message: /limit must be at least 1/, key: KEYS.privacy },
  { path: '/v1/audit?limit=abc', status: 400, message: /limit must be a whole number/, key: KEYS.privacy },
  { path: '/v1/audit?limit=1e3', status: 400, message: /limit must be a whole number/, key: KEYS.privacy },
  { path: '/v1/audit?limit=10001', status: 400, message: /limit must be at most 10000/, key: KEYS.privacy },
  { path: '/v1/audit?limit=1&limit=2', status: 400, message: /limit must be given once/, key: KEYS.privacy },
  { path: '/v1/audit?key_id=', status: 400, message: /key_id must not be empty/, key: KEYS.privacy },
  { path: `/v1/audit?key_id=${'k'.repeat(129)}`, status: 400, message: /key_id must be at most 128 characters/, key: KEYS.privacy },
  { path: '/v1/audit?key_id=a%00b', status: 400, message: /key_id must not contain control characters/, key: KEYS.privacy },
  { path: '/v1/audit?route=/v1/usage', status: 400, message: /unknown parameter route/, key: KEYS.privacy },
  // erasure status
  { path: '/v1/erasures/not-a-uuid', status: 400, code: 'invalid_request_id', message: /UUIDs/, key: KEYS.privacy },
  { path: '/v1/erasures/00000000-0000-4000-8000-000000000000?verbose=1', status: 400, message: /unknown parameter verbose/, key: KEYS.privacy },
  { path: '/v1/erasures/00000000-0000-4000-8000-000000000000', status: 404, code: 'not_found', message: /no such erasure request/, key: KEYS.privacy },
  { path: `/v1/erasures/${'a'.repeat(3000)}`, status: 414, code: 'uri_too_long', message: /longer than 2048/, key: KEYS.privacy },
  // datasets: the time bounds pass through this module's rule
  { path: `${DS}?from=0&to=2026-01-01`, status: 400, message: /from must be from 2000-01-01/, key: KEYS.datascience },
  { path: `${DS}?from=3600000&to=2026-01-01`, status: 400, message: /from must be from 2000-01-01/, key: KEYS.datascience },
  { path: `${DS}?from=2026-01-01&to=2026-13-45`, status: 400, message: /to/, key: KEYS.datascience },
  { path: `${DS}?from=2026-02-01&to=2026-01-01`, status: 400, message: /from must be before to/, key: KEYS.datascience },
  { path: `${DS}?from=2026-01-01&to=2026-02-01&format=xml`, status: 400, message: /format must be parquet or csv/, key: KEYS.datascience },
];

/** Values thrown at every parameter in the sweep. */
const HOSTILE = ['', '0', '-1', 'NaN', 'Infinity', 'abc', '1e308', '99999999999999999999', '-3600000', '3600000', '9999-12-31', '0000-01-01', '2026-13-45', '2026-02-30',
  '1969-12-31T23:00:00Z', '275760-09-13T00:00:00Z', '2026-01-01T00:00:00', 'x'.repeat(5000), '%00', '\u0000', '=HYPERLINK("x")', "' OR 1=1 --", '{}', '[]', 'now-99999w'];
/** Already percent-encoded: a lone surrogate (as CESU-8), bytes that are not UTF-8, broken escapes. */
const HOSTILE_ENCODED = [...HOSTILE.map(encodeURIComponent), '%ED%A0%80', '%FF', '%', '%2', '%E2%80%8E'];

function expectErrorShape(body: unknown, where: string): void {
  expect(body, where).toEqual({ error: expect.objectContaining({ code: expect.any(String), message: expect.any(String) }) });
  const keys = Object.keys((body as { error: object }).error).sort();
  expect(['code,message', 'code,details,message'], where).toContain(keys.join(','));
}

describe('query parameters of every GET route', () => {
  let p: TestPipeline;

  beforeAll(async () => {
    p = await startTestPipeline('route-params');
  });
  afterAll(async () => {
    await p?.stop();
  });

  /** Like p.get, but a body that does not parse is reported, not thrown. */
  const rawGet = async (path: string, key: string): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${p.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
    const text = await res.text();
    if (!res.headers.get('content-type')?.startsWith('application/json')) return { status: res.status, body: text };
    try {
      return { status: res.status, body: JSON.parse(text) };
    } catch {
      return { status: res.status, body: undefined };
    }
  };

  it.each(CASES)('$path → $status', async (c) => {
    const res = await p.get(c.path, c.key ?? KEYS.billing);
    expect(res.status, JSON.stringify(res.body)).toBe(c.status);
    expectErrorShape(res.body, c.path);
    if (c.code) expect(res.body.error.code).toBe(c.code);
    expect(res.body.error.message).toMatch(c.message);
  });

  it('answers every hostile value of every parameter of every GET route with a 4xx or a result, never a 5xx', async () => {
    const routes: [string, string[], string][] = [
      [U, ['from', 'to', 'granularity', 'group_by'], KEYS.billing],
      [C, ['period'], KEYS.billing],
      ['/v1/producers', ['x'], KEYS.billing],
      ['/v1/usage', ['period', 'from', 'to', 'group_by', 'limit', 'cursor', 'format'], KEYS.billing],
      [E, ['format'], KEYS.privacy],
      ['/v1/audit', ['from', 'to', 'key_id', 'limit'], KEYS.privacy],
      ['/v1/erasures/00000000-0000-4000-8000-000000000000', ['x'], KEYS.privacy],
      ['/v1/analytics/queries', ['x'], KEYS.planner],
      ['/v1/analytics/datasets', ['x'], KEYS.datascience],
      [DS, ['from', 'to', 'format', 'split'], KEYS.datascience],
    ];
    const listed = await p.get('/v1/analytics/queries', KEYS.planner);
    expect(listed.status).toBe(200);
    for (const q of listed.body.queries as { name: string; params: { name: string }[] }[]) {
      routes.push([`/v1/analytics/queries/${q.name}`, [...q.params.map((x) => x.name), 'format'], KEYS.planner]);
    }
    // Beside each value: alone, with a valid partner bound, and repeated (an array).
    const partners = ['', '&from=2026-01-01', '&to=2026-01-01', '&period=2026-01'];
    const failures: string[] = [];
    for (const [route, params, key] of routes) {
      for (const param of params) {
        for (const v of HOSTILE_ENCODED) {
          for (const extra of [...partners, `&${param}=${v}`]) {
            const url = `${route}?${param}=${v}${extra}`;
            const res = await rawGet(url, key);
            if (res.body === undefined) failures.push(`${res.status} unreadable body ${url.slice(0, 160)}`);
            else if (res.status >= 500) failures.push(`${res.status} ${url.slice(0, 160)}`);
            else if (res.status >= 400) expectErrorShape(res.body, url.slice(0, 160));
          }
        }
      }
    }
    expect(failures).toEqual([]);
  });
});
