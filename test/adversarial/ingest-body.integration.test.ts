/**
 * Hostile bodies on POST /v1/samples, as an attacker would send them, each with the status
 * it must get. What matters besides the status: nothing the engine would refuse or change
 * is acknowledged, the valid samples beside a bad one are kept, and every acknowledged
 * sample is billed exactly as written.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedTotals, type SentSample } from '../support/oracle.js';
import { KEYS, startTestPipeline, type TestPipeline } from '../support/pipeline.js';

const NOW = Date.now();
const HOUR_START = Math.floor((NOW - 2 * 3_600_000) / 3_600_000) * 3_600_000;

/** What each test saw acknowledged, in order: the independent oracle bills these. */
const acknowledged: Record<string, unknown>[] = [];
const ack = <T extends Record<string, unknown>>(s: T): T => (acknowledged.push(s), s);

let seq = 0;
function sample(over: Record<string, unknown> = {}): Record<string, unknown> {
  seq++;
  return {
    id: `adv-body-${seq}`,
    account_id: 'acct-body',
    resource_id: `vm-${seq}`,
    resource_type: 'vm',
    region: 'eu-west-1',
    metric: 'cpu',
    value: 1,
    ts: HOUR_START + 60_000 + seq,
    interval_s: 60,
    ...over,
  };
}

async function postRaw(p: TestPipeline, body: string | Buffer, headers: Record<string, string>) {
  const res = await fetch(`${p.url}/v1/samples`, { method: 'POST', headers: { authorization: `Bearer ${KEYS.producer}`, ...headers }, body: typeof body === 'string' ? body : new Uint8Array(body) });
  return { status: res.status, body: (await res.json()) as any };
}

describe('hostile sample bodies', () => {
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline('adv-body', { MAX_BODY_BYTES: String(1024 * 1024) });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('refuses a lone surrogate in any string field, and keeps the valid sample beside it', async () => {
    // JSON.stringify writes a lone surrogate as the escape "\ud800": exactly what an attacker sends.
    const bad = ['id', 'account_id', 'resource_id'].map((field) => sample({ [field]: `x\ud800y` }));
    const badAttr = sample({ attributes: { instance_type: 'm5\udfff' } });
    const good = ack(sample());
    const res = await p.post([...bad, badAttr, good]);
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(1);
    expect(res.body.rejected.map((r: any) => r.errors[0].message)).toEqual([
      'id must be well-formed Unicode (it holds a lone surrogate)',
      'account_id must be well-formed Unicode (it holds a lone surrogate)',
      'resource_id must be well-formed Unicode (it holds a lone surrogate)',
      'attribute values must be well-formed Unicode (it holds a lone surrogate)',
    ]);
  });

  it('refuses numbers that a float64 would change, naming the number as written', async () => {
    const body = `[${JSON.stringify(sample()).replace('"value":1', '"value":0.10000000000000001')},${JSON.stringify(
      sample({ metric: 'bandwidth_in' }),
    ).replace('"value":1', '"value":9007199254740990.9')},${JSON.stringify(ack(sample({ value: 0.1 })))},${JSON.stringify(sample()).replace(
      '"value":1',
      '"value":7e-332',
    )}]`;
    const res = await postRaw(p, body, { 'content-type': 'application/json' });
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(1);
    expect(res.body.rejected).toEqual([
      { index: 0, errors: [{ path: 'value', message: 'value 0.10000000000000001 cannot be kept exactly as written (at most 15 significant digits)' }] },
      { index: 1, errors: [{ path: 'value', message: 'value 9007199254740990.9 cannot be kept exactly as written (at most 15 significant digits)' }] },
      // One digit, but below float64's range: it would have been billed as 0.
      { index: 3, errors: [{ path: 'value', message: 'value 7e-332 cannot be kept exactly as written (at most 15 significant digits)' }] },
    ]);
  });

  it('keeps long digit runs inside strings as they are, and exact long numbers', async () => {
    // 16+ digits in a string take the slow path; they must come out unchanged.
    const res = await p.post([
      ack(sample({ id: 'id-12345678901234567890.5', resource_id: 'vm-"quoted"-9999999999999999' })),
      ack(sample({ metric: 'bandwidth_out', value: 1234567890123456 })),
    ]);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ accepted: 2, rejected: [] });
  });

  it('refuses invalid UTF-8: the whole JSON body, or just the NDJSON line', async () => {
    const json = Buffer.concat([Buffer.from(`[${JSON.stringify(sample({ id: 'utf8-a' })).replace('utf8-a', 'utf8-')}`), Buffer.from([0xff, 0xfe]), Buffer.from('"}]')]);
    // Splice raw bytes into the id string: {"id":"utf8-\xff\xfe"...
    const jsonRes = await postRaw(p, json, { 'content-type': 'application/json' });
    expect(jsonRes.status).toBe(400);
    expect(jsonRes.body.error.message).toBe('the body is not valid UTF-8');

    const goodLine = Buffer.from(JSON.stringify(ack(sample({ id: 'utf8-good' }))) + '\n');
    const badLine = Buffer.concat([Buffer.from('{"id":"utf8-'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]);
    const nd = await postRaw(p, Buffer.concat([goodLine, badLine]), { 'content-type': 'application/x-ndjson' });
    expect(nd.status).toBe(202);
    expect(nd.body.accepted).toBe(1);
    expect(nd.body.rejected).toEqual([{ index: 1, errors: [{ path: '(item)', message: 'line 2 is not valid UTF-8' }] }]);
  });

  it('refuses deep nesting early, before building it', async () => {
    const deep = '['.repeat(500_000) + ']'.repeat(500_000);
    const res = await postRaw(p, deep, { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toBe('JSON nested deeper than 8 levels is refused');
    const nd = await postRaw(p, `${JSON.stringify(ack(sample()))}\n${'['.repeat(20)}${']'.repeat(20)}\n`, { 'content-type': 'application/x-ndjson' });
    expect(nd.status).toBe(202);
    expect(nd.body.rejected[0].errors[0].message).toBe('line 2: JSON nested deeper than 8 levels is refused');
  });

  it('decodes gzip, refuses a gzip bomb at the decompressed limit, and 415s other encodings', async () => {
    const ok = await postRaw(p, gzipSync(JSON.stringify([ack(sample())])), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(ok.status).toBe(202);
    expect(ok.body.accepted).toBe(1);

    // 64 MB of spaces compress to ~64 KB: the limit is 1 MB decompressed.
    const bomb = gzipSync(Buffer.concat([Buffer.from('['), Buffer.alloc(64 * 1024 * 1024, 0x20), Buffer.from(']')]));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const bombRes = await postRaw(p, bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(bombRes.status).toBe(413);

    const corrupt = await postRaw(p, Buffer.from('not gzip at all'), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(corrupt.status).toBe(400);
    expect(corrupt.body.error.message).toMatch(/^the body is not valid gzip/);

    const br = await postRaw(p, JSON.stringify([sample()]), { 'content-type': 'application/json', 'content-encoding': 'br' });
    expect(br.status).toBe(415);
    expect(br.body.error.message).toBe('Content-Encoding "br" is not supported; send gzip or an uncompressed body');
  });

  it('caps the rejected list of a huge invalid batch and counts the rest', async () => {
    const items = Array.from({ length: 5000 }, () => sample({ value: -1 }));
    const res = await p.post([...items, ack(sample())]);
    expect(res.status).toBe(202);
    expect(res.body.rejected).toHaveLength(100);
    expect(res.body.rejected_count).toBe(5000);
    expect(res.body.rejected[99].index).toBe(99);
  });

  it('bills every acknowledged sample exactly as written', async () => {
    await p.waitIdle();
    const from = new Date(HOUR_START).toISOString();
    const to = new Date(HOUR_START + 3_600_000).toISOString();
    const usage = await p.get(`/v1/accounts/acct-body/usage?from=${from}&to=${to}`);
    expect(usage.status).toBe(200);
    expect(usage.body.complete).toBe(true);
    const billed = new Map(usage.body.rows.map((r: any) => [`acct-body|${r.metric}`, r.base_total]));
    expect(billed).toEqual(expectedTotals(acknowledged as unknown as SentSample[]));
  });
});
