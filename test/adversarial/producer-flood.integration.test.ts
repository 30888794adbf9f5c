/**
 * Issue 11, a producer key filling Redis: each new X-Producer-Id with a huge
 * X-Producer-Seq once recorded ~10,000 gap entries (~1.4 MB) even for an invalid body;
 * 200 such requests grew Redis by 274 MB. Now refused input is not recorded at all, a gap
 * is one range however wide, each producer keeps at most PRODUCER_MAX_GAP_RANGES ranges,
 * and at most PRODUCER_MAX_TRACKED producers are tracked (a new one beyond gets 429).
 * Measured on a real Redis, as an attacker would send it.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, startTestPipeline, type TestPipeline } from '../support/pipeline.js';

const MAX_TRACKED = 50;
const MAX_RANGES = 8;
const HUGE = 999_999_999_999_999; // the largest X-Producer-Seq (15 digits)
const HOUR = 3_600_000;
const ts = Math.floor(Date.now() / HOUR) * HOUR - HOUR;

const sample = (id: string) => ({ id, account_id: 'acct-flood', resource_id: 'vm-1', resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 1, ts, interval_s: 60 });
const invalid = [{ ...sample('bad'), value: -1 }];

let p: TestPipeline;
let probe: Redis;

beforeAll(async () => {
  p = await startTestPipeline('prodflood', {
    PRODUCER_MAX_TRACKED: String(MAX_TRACKED),
    PRODUCER_MAX_GAP_RANGES: String(MAX_RANGES),
    // The flood itself is the subject here, not the rate limit (rate-limits.integration.test.ts).
    INGEST_REQUESTS_PER_S: '0',
  });
  probe = new Redis(p.config.REDIS_URL ?? 'redis://127.0.0.1:6379');
});
afterAll(async () => {
  probe?.disconnect();
  await p?.stop();
});

async function send(body: unknown, producer: string, seq: number) {
  const res = await fetch(`${p.url}/v1/samples`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEYS.producer}`, 'content-type': 'application/json', 'x-producer-id': producer, 'x-producer-seq': String(seq) },
    body: JSON.stringify(body),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { error?: { code: string; message: string } } };
}

/** Keys under a pattern and the bytes Redis reports for them (MEMORY USAGE, with nested values). */
async function footprint(pattern: string): Promise<{ keys: number; bytes: number }> {
  let cursor = '0';
  let keys = 0;
  let bytes = 0;
  do {
    const [next, batch] = await probe.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of batch) {
      keys++;
      bytes += Number((await probe.memory('USAGE', key, 'SAMPLES', 0)) ?? 0);
    }
  } while (cursor !== '0');
  return { keys, bytes };
}

async function inParallel<T>(n: number, width: number, f: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await f(i);
    }
  }));
  return out;
}

describe('a producer-id flood', () => {
  it('400 new ids with huge numbers and invalid bodies grow Redis by nothing', async () => {
    const prefix = `${p.config.KEY_PREFIX}:*`;
    const producerKeys = `${p.config.KEY_PREFIX}:producer*`;
    const [before, producersBefore] = [await footprint(prefix), await footprint(producerKeys)];
    const answers = await inParallel(400, 8, (i) => send(invalid, `flood-invalid-${i}`, HUGE));
    const [after, producersAfter] = [await footprint(prefix), await footprint(producerKeys)];
    expect(answers.every((a) => a.status === 400 && a.body.error?.code === 'no_valid_samples')).toBe(true);
    const growth = after.bytes - before.bytes;
    console.log(`producer flood, 400 new ids × X-Producer-Seq ${HUGE} × invalid body: Redis under the prefix ${before.bytes} → ${after.bytes} bytes (${growth >= 0 ? '+' : ''}${growth}), keys ${before.keys} → ${after.keys}`);
    // Nothing is recorded for a refused batch; the rest of the prefix (the rollup's lock,
    // BullMQ's stalled check) comes and goes on its own by a few hundred bytes.
    expect(producersAfter).toEqual(producersBefore);
    expect(growth).toBeLessThan(4096);
    expect((await p.get('/v1/producers')).body.producers).toEqual([]);
  });

  it(`valid batches from new ids cost one range each, and a new id beyond ${MAX_TRACKED} gets 429`, async () => {
    const pattern = `${p.config.KEY_PREFIX}:producer*`;
    const before = await footprint(pattern);
    const n = MAX_TRACKED + 20;
    // One at a time: which ids get the room is then known (the first MAX_TRACKED).
    const answers = await inParallel(n, 1, (i) => send([sample(`v-${i}`)], `flood-valid-${String(i).padStart(3, '0')}`, HUGE));
    const after = await footprint(pattern);
    expect(answers.slice(0, MAX_TRACKED).map((a) => a.status)).toEqual(Array(MAX_TRACKED).fill(202));
    for (const refused of answers.slice(MAX_TRACKED)) {
      expect(refused.status).toBe(429);
      expect(refused.body.error?.code).toBe('too_many_producers');
      expect(refused.body.error?.message).toContain(`${MAX_TRACKED} producers are tracked already`);
      expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(refused.retryAfter)).toBeLessThanOrEqual(3600);
    }
    const growth = after.bytes - before.bytes;
    console.log(
      `producer flood, ${n} new ids × X-Producer-Seq ${HUGE} × one valid sample: producer keys ${before.keys} → ${after.keys}, ` +
        `${before.bytes} → ${after.bytes} bytes (+${growth}, ${Math.round(growth / MAX_TRACKED)} bytes per tracked producer)`,
    );
    // 50 producers, one range each, in 50 gap keys, a hash field each and a last-seen entry:
    // a few hundred bytes a producer, where one used to cost 1.4 MB.
    expect(after.keys - before.keys).toBeLessThanOrEqual(MAX_TRACKED + 3);
    expect(growth).toBeLessThan(MAX_TRACKED * 512);

    const report = (await p.get('/v1/producers')).body.producers as { producer: string; last_seq: number; missing: number; first_missing: number[] }[];
    expect(report).toHaveLength(MAX_TRACKED);
    expect(report[0]).toEqual({ producer: 'flood-valid-000', last_seq: HUGE, missing: HUGE, first_missing: Array.from({ length: 20 }, (_, i) => i) });

    // A tracked producer still may send; an untracked one is refused before its body is read.
    expect((await send([sample('v-again')], 'flood-valid-000', HUGE - 5)).status).toBe(202);
    expect((await send(invalid, 'flood-valid-999', 1)).status).toBe(429);
  });

  it(`keeps at most ${MAX_RANGES} gap ranges per producer, counts the rest, and closes a gap when its batch arrives`, async () => {
    const id = 'flood-valid-001'; // tracked already (last_seq HUGE): start a fresh id instead would exceed the cap
    await probe.hdel(`${p.config.KEY_PREFIX}:producers`, id);
    await probe.del(`${p.config.KEY_PREFIX}:producer-gaps:${id}`);
    for (let seq = 0; seq <= 40; seq += 2) expect((await send([sample(`g-${seq}`)], id, seq)).status).toBe(202);
    expect(await probe.zcard(`${p.config.KEY_PREFIX}:producer-gaps:${id}`)).toBe(MAX_RANGES);
    const mine = async () => ((await p.get('/v1/producers')).body.producers as { producer: string; first_missing: number[] }[]).find((r) => r.producer === id);
    // 20 numbers missing (1, 3, …, 39): the oldest 8 listed, all 20 counted.
    expect(await mine()).toEqual({ producer: id, last_seq: 40, missing: 20, first_missing: [1, 3, 5, 7, 9, 11, 13, 15] });
    expect((await send([sample('g-3')], id, 3)).status).toBe(202); // a late retry closes its gap
    expect(await mine()).toEqual({ producer: id, last_seq: 40, missing: 19, first_missing: [1, 5, 7, 9, 11, 13, 15] });
    // A retry whose batch is all invalid is not received: its number stays missing.
    expect((await send(invalid, id, 5)).status).toBe(400);
    expect((await mine())?.first_missing).toContain(5);
    // Splitting a wide range cannot grow past the bound either.
    for (let seq = 100; seq <= 140; seq += 2) await send([sample(`w-${seq}`)], id, seq);
    expect(await probe.zcard(`${p.config.KEY_PREFIX}:producer-gaps:${id}`)).toBeLessThanOrEqual(MAX_RANGES);
    expect(await probe.pttl(`${p.config.KEY_PREFIX}:producer-gaps:${id}`)).toBeGreaterThan(0); // forgotten when idle
  });
});
