/**
 * The documented contract is what the server does: every route in the catalogue is called
 * against a real seeded pipeline (real Redis, real embedded ClickHouse) with a key of a
 * role it admits, and the answer's status, content type and body must be documented (the
 * body parses with the strict response schema the document is generated from, so a field
 * sent but not documented fails too). Every keyed route refuses a request without a key
 * (401) and, where roles are named, a key of every other role (403), in the error shape.
 *
 * A catalogue entry without a call below fails the test: a new route is called here too.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTE_CATALOGUE, type RouteDoc } from '../app/api-contract/index.js';
import type { MediaDoc } from '../app/api-contract/types.js';
import { responsesOf, rolesOf } from '../app/openapi.js';
import { addToQuarantine } from '../domain/quarantine.js';
import { usageHourOf } from '../lib/time.js';
import { apiErrorSchema } from '../schemas/api/common.js';
import type { KeyRole } from '../schemas/config.js';
import { encodeRawRow, rawRowOf } from '../schemas/raw-row.js';
import { parseSample } from '../schemas/sample.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
const now = Date.now();
const thisHour = Math.floor(now / HOUR) * HOUR;
const period = new Date(now).toISOString().slice(0, 7);

const sample = (account: string, i: number, metric = 'cpu') => ({
  id: `contract-${account}-${metric}-${i}`,
  account_id: account,
  resource_id: `vm-${i % 3}`,
  resource_type: 'vm',
  region: 'eu-west-1',
  metric,
  value: metric === 'cpu' ? 30 + i : 2_147_483_648,
  // Always within the previous hour, whatever `i` and the clock: ingest refuses the future.
  ts: thisHour - HOUR + ((i % 59) + 1) * 60_000,
  interval_s: 60,
  attributes: { instance_type: 'm5.large' },
});

interface Call {
  path: string;
  query?: string;
  body?: string;
  contentType?: string;
  accept?: string;
  status: number;
}

describe('every documented route, called', () => {
  let p: TestPipeline;
  const quarantined: string[] = [];
  let erasureId = '';

  async function call(route: RouteDoc, c: Call, key: string | undefined) {
    const res = await fetch(`${p.url}${c.path}${c.query ? `?${c.query}` : ''}`, {
      method: route.method,
      redirect: 'manual',
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(c.contentType ? { 'content-type': c.contentType } : {}),
        ...(c.accept ? { accept: c.accept } : {}),
      },
      ...(c.body !== undefined ? { body: c.body } : {}),
    });
    return { status: res.status, type: res.headers.get('content-type') ?? '', bytes: Buffer.from(await res.arrayBuffer()) };
  }

  /** How each operation is called with a key of a role it admits; what it must answer. */
  const calls: Record<string, () => Call | Promise<Call>> = {
    postSamples: () => ({ path: '/v1/samples', body: JSON.stringify([sample('acct-contract', 90), { nope: true }]), contentType: 'application/json', status: 202 }),
    // A valid OTLP/JSON export with one gauge point the server has no mapping for: answered 200, with partialSuccess saying so.
    postOtlpMetrics: () => ({
      path: '/v1/metrics',
      body: JSON.stringify({
        resourceMetrics: [{ resource: { attributes: [{ key: 'host.name', value: { stringValue: 'h1' } }] }, scopeMetrics: [{ metrics: [{ name: 'contract.unmapped', gauge: { dataPoints: [{ timeUnixNano: String(BigInt(now) * 1_000_000n), asDouble: 1 }] } }] }] }],
      }),
      contentType: 'application/json',
      status: 200,
    }),
    listQuarantine: () => ({ path: '/v1/quarantine', query: 'limit=10', status: 200 }),
    getQuarantineEntry: () => ({ path: `/v1/quarantine/${quarantined[0]}`, status: 200 }),
    replayQuarantineEntry: () => ({ path: `/v1/quarantine/${quarantined[0]}/replay`, status: 200 }),
    discardQuarantineEntry: () => ({ path: `/v1/quarantine/${quarantined[1]}`, status: 200 }),
    getAccountUsage: () => ({ path: '/v1/accounts/acct-contract/usage', query: 'granularity=hour&group_by=resource_id,region', status: 200 }),
    getAccountCoverage: () => ({ path: '/v1/accounts/acct-contract/coverage', query: `period=${period}`, status: 200 }),
    listProducers: () => ({ path: '/v1/producers', status: 200 }),
    exportUsage: () => ({ path: '/v1/usage', query: `period=${period}&group_by=resource_id`, accept: 'application/x-ndjson', status: 200 }),
    terminateAccount: () => ({ path: '/v1/accounts/acct-terminated/terminate', status: 200 }),
    exportAccountData: () => ({ path: '/v1/accounts/acct-contract/export', accept: 'application/json', status: 200 }),
    eraseAccount: () => ({ path: '/v1/accounts/acct-erased', status: 202 }),
    getErasure: () => ({ path: `/v1/erasures/${erasureId}`, status: 200 }),
    reinstateAccount: async () => {
      await waitForErasure();
      return { path: '/v1/accounts/acct-erased/reinstate', status: 200 };
    },
    getAuditTrail: () => ({ path: '/v1/audit', query: 'limit=50', status: 200 }),
    listNamedQueries: () => ({ path: '/v1/analytics/queries', status: 200 }),
    runNamedQuery: () => ({ path: '/v1/analytics/queries/fleet-size', query: 'from=now-2d&granularity=hour', status: 200 }),
    runNamedQueryInLibrary: () => ({ path: '/v1/analytics/queries/capacity/fleet-size', query: 'format=csv', status: 200 }),
    runSql: () => ({ path: '/v1/analytics/sql', body: JSON.stringify({ sql: 'SELECT metric, count() AS cells FROM analytics.fleet_usage_hourly GROUP BY metric' }), contentType: 'application/json', status: 200 }),
    listAnalyticsTables: () => ({ path: '/v1/analytics/tables', status: 200 }),
    listDatasets: () => ({ path: '/v1/analytics/datasets', status: 200 }),
    getDataset: () => ({ path: '/v1/analytics/datasets/fleet-demand', query: 'from=now-2d&to=now', status: 200 }),
    getDataCard: () => ({ path: '/v1/analytics/datasets/fleet-demand/card', query: 'from=now-2d&to=now', status: 200 }),
    getHealth: () => ({ path: '/healthz', status: 200 }),
    getReadiness: () => ({ path: '/readyz', status: 200 }),
    getMetrics: () => ({ path: '/metrics', status: 200 }),
    getStatus: () => ({ path: '/v1/status', status: 200 }),
    getOpenApiDocument: () => ({ path: '/openapi.json', status: 200 }),
    getApiReferencePage: () => ({ path: '/docs/api', status: 200 }),
    redirectToConsole: () => ({ path: '/console', status: 301 }),
    getConsole: () => ({ path: '/console/', status: 200 }),
    getConsoleFile: () => ({ path: '/console/vendor/uPlot.min.css', status: 200 }),
  };

  async function waitForErasure() {
    for (let i = 0; i < 600; i++) {
      const s = await p.get(`/v1/erasures/${erasureId}`, KEYS.privacy);
      if (s.body.status === 'done') return;
      if (s.body.status === 'failed') throw new Error(`erasure failed: ${s.body.error}`);
      await sleep(100);
    }
    throw new Error('erasure did not finish');
  }

  beforeAll(async () => {
    p = await startTestPipeline('openapi-contract');
    const seeded = await p.post([...Array.from({ length: 12 }, (_, i) => sample('acct-contract', i)), ...Array.from({ length: 6 }, (_, i) => sample('acct-contract', i, 'memory')), sample('acct-erased', 1)]);
    expect(seeded.status).toBe(202);
    await p.waitIdle();
    // Two quarantined entries, as the batch writer leaves them when the engine refuses rows.
    for (let e = 0; e < 2; e++) {
      const id = randomUUID();
      const parsed = parseSample(sample('acct-quarantined', 50 + e), now);
      if (!parsed.ok) throw new Error('seed sample invalid');
      const hour = usageHourOf(parsed.sample.ts_ms);
      const line = encodeRawRow(rawRowOf(parsed.sample, hour, { batchId: id, batchSeq: 1000 + e, acceptedAtMs: now }, 0));
      const added = await addToQuarantine(
        p.redis.client,
        p.redisKeys,
        { id, batchSeq: 1000 + e, acceptedAtMs: now, firstSeenMs: now, reason: 'TEST: refused by the engine', rowFormat: 'JSONCompactEachRow', rowCount: 1, accounts: { 'acct-quarantined': [hour] }, rows: line },
        1000,
      );
      expect(added).toBe('added');
      quarantined.push(id);
    }
  }, 180_000);
  afterAll(async () => {
    await p?.stop();
  });

  const keyOf = (role: KeyRole) => KEYS[role];

  it('has a call for every catalogue entry', () => {
    expect(ROUTE_CATALOGUE.map((r) => r.operationId).filter((id) => !(id in calls))).toEqual([]);
  });

  for (const route of ROUTE_CATALOGUE) {
    it(`${route.method} ${route.path} answers as documented, and refuses the keys it does not admit`, async () => {
      const c = await calls[route.operationId]!();
      const roles = rolesOf(route) as KeyRole[];

      if (route.access !== 'public') {
        const none = await call(route, c, undefined);
        expect(none.status, 'no key').toBe(401);
        expect(apiErrorSchema.parse(JSON.parse(none.bytes.toString())).error.code).toBe('unauthorized');
        const wrong = await call(route, c, 'not-a-key-of-anyone-at-all');
        expect(wrong.status, 'unknown key').toBe(401);
        if (route.access !== 'any key') {
          for (const other of (Object.keys(KEYS) as KeyRole[]).filter((r) => !roles.includes(r))) {
            const refused = await call(route, c, keyOf(other));
            expect(refused.status, `${other} key`).toBe(403);
            expect(apiErrorSchema.parse(JSON.parse(refused.bytes.toString())).error.code).toBe('forbidden');
          }
        }
      }

      const res = await call(route, c, roles[0] ? keyOf(roles[0]) : undefined);
      if (res.status !== c.status) throw new Error(`answered ${res.status}, not ${c.status}: ${res.bytes.toString().slice(0, 500)}`);
      const documented = responsesOf(route)[res.status];
      expect(documented, `status ${res.status} is documented`).toBeDefined();
      if (route.operationId === 'postSamples') expect(JSON.parse(res.bytes.toString()).rejected_count).toBe(1);
      if (route.operationId === 'eraseAccount') erasureId = JSON.parse(res.bytes.toString()).request_id;

      const content = documented!.content;
      if (!content) return expect(res.bytes.length).toBe(0);
      const type = Object.keys(content).find((t) => res.type.split(';')[0]!.trim() === t);
      expect(type, `content type ${res.type} is one of ${Object.keys(content).join(', ')}`).toBeDefined();
      checkBody(content[type!]!, type!, res.bytes);
    });
  }
});

/** The body against its documented schema: JSON whole, NDJSON line by line, other formats by their signature. */
function checkBody(media: MediaDoc, type: string, bytes: Buffer) {
  expect(bytes.length).toBeGreaterThan(0);
  const text = bytes.toString('utf8');
  if (media.schema && !media.raw) {
    const parsed = media.schema.safeParse(JSON.parse(text));
    expect(parsed.success ? [] : parsed.error.issues, 'body matches the documented schema').toEqual([]);
    return;
  }
  if (media.schema && media.raw === 'text') {
    const lines = text.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const parsed = media.schema.safeParse(JSON.parse(line));
      expect(parsed.success ? [] : parsed.error.issues, `line ${line}`).toEqual([]);
    }
    return;
  }
  if (type === 'application/vnd.apache.parquet') return expect(bytes.subarray(0, 4).toString('latin1')).toBe('PAR1');
  if (type === 'text/html') return expect(text).toMatch(/<html/i);
  if (type === 'application/json') return expect(() => JSON.parse(text)).not.toThrow();
  if (type === 'text/csv') return expect(text.split('\n')[0]).toMatch(/\S/);
}
