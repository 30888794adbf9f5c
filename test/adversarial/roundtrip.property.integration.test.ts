/**
 * Ingest accepts exactly what the engine stores: 100,000 generated hostile items go through
 * the real path — JSON text → body decoding (ingest/json-text.ts) → validation
 * (schemas/sample.ts) → the job's row encoding (toBatchJob) → the worker's insert into the
 * real engine — and every accepted item is read back and compared field by field.
 *
 * The property: no item is accepted that the engine refuses, and none is stored changed.
 * Items are built as JSON *text*, so numbers reach the decoder as a producer wrote them
 * (17 significant digits, exponents, -0), and strings as any UTF-16 sequence (lone
 * surrogates included: JSON.stringify writes them as escapes, as an attacker's JSON would).
 *
 * PROPERTY_SEED reruns one generation; PROPERTY_ITEMS changes the count; PROPERTY_REASONS=1
 * prints how often each refusal reason came up (to keep the generator balanced).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Big from 'big.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBatchJob } from '../../ingest/accept.js';
import { parseJsonText } from '../../ingest/json-text.js';
import { createClickHouse, queryRows, type ClickHouseClient } from '../../lib/clickhouse.js';
import { migrate } from '../../lib/migrate.js';
import { METRICS, RESOURCE_TYPES, parseSample, type NormalizedSample } from '../../schemas/sample.js';
import { insertRawRows } from '../../workers/batch-writer.js';

const ITEMS = Number(process.env.PROPERTY_ITEMS ?? 100_000);
const SEED = Number(process.env.PROPERTY_SEED ?? 20261130);
const NOW = Date.UTC(2026, 10, 30, 12, 0, 0);

// ---- generators: near-valid samples with hostile parts -------------------------------

const NASTY_UNITS = ['\u0000', '\u0007', '\t', '\n', '\u001b', '\u007f', '\u0085', '\u00a0', '\u200b', '\u200d', '\u2028', '\ufeff', '\ufffd', '\ufffe', '\uffff', '\ud800', '\udbff\udfff', '\udc00', '\\', '"', "'", ',', '=', '+', '@', 'é', 'e\u0301', '😀', '𝔘', '\u{10ffff}', '%00', '\\u0000'];
const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }), // any code points, surrogates included
  fc.string({ unit: fc.constantFrom(...NASTY_UNITS), maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'grapheme-ascii', minLength: 120, maxLength: 300 }), // around the length limits
  fc.constant(''),
);
const plainId = fc.stringMatching(/^[a-z0-9][a-z0-9._:-]{0,30}$/);
/** Printable but awkward: what the engine must store byte for byte once accepted. */
const AWKWARD_UNITS = ['\\', '"', "'", ',', ';', '=', '+', '@', '-', ' ', '\u00a0', 'é', 'e\u0301', 'ß', '😀', '👩🏽', '𝔘', '\u{10ffff}', '\ufffd', '\ufffe', '\uffff', '\ue000', '%00', '\\u0000', '\\n', '{', '}', '[', ']', 'ǅ', '\u0130'];
const awkward = fc.string({ unit: fc.constantFrom(...AWKWARD_UNITS), minLength: 1, maxLength: 24 });
const text = fc.oneof({ weight: 5, arbitrary: plainId }, { weight: 4, arbitrary: awkward }, { weight: 1, arbitrary: hostileString });

const digits = (min: number, max: number) => fc.stringMatching(new RegExp(`^[0-9]{${min},${max}}$`));
/** Number tokens as a producer might write them. */
const numberText = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 10_000 }).map(String) },
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
  fc.tuple(digits(1, 12), digits(1, 9)).map(([a, b]) => `${a}.${b}`), // decimals near the 6-place rule
  fc.tuple(digits(1, 20), digits(0, 20)).map(([a, b]) => (b ? `${a}.${b}` : a)), // 16+ significant digits
  fc.tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: -400, max: 400 })).map(([m, e]) => `${m}e${e}`),
  fc.constantFrom('-0', '0.0', '1E2', '1.5e-3', '9007199254740991', '9007199254740992', '9007199254740990.9', '0.10000000000000001', '999999999.999999', '999999999.9999999', '-1', '1e999'),
);
const tsText = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: NOW - 80 * 86_400_000, max: NOW + 10 * 60_000 }).map(String) },
  fc.integer({ min: NOW - 80 * 86_400_000, max: NOW }).map((ms) => JSON.stringify(new Date(ms).toISOString())),
  fc.integer({ min: NOW - 86_400_000, max: NOW }).map((ms) => JSON.stringify(new Date(ms).toISOString().replace('Z', '+05:30'))),
  numberText,
  hostileString.map((s) => JSON.stringify(s)),
);
const attributes = fc.option(
  fc.dictionary(
    fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom('instance_type', 'zone', 'plan', 'constructor', 'to_string') },
      { weight: 4, arbitrary: fc.stringMatching(/^[a-z_][a-z0-9_]{0,70}$/) },
      { weight: 1, arbitrary: fc.oneof(fc.constant('__proto__'), hostileString) },
    ),
    text,
    { maxKeys: 6 },
  ),
  { nil: undefined },
);

/** One item as JSON text; numeric fields are spliced in as raw tokens. */
const itemText = fc
  .record({
    id: text,
    account_id: text,
    resource_id: text,
    resource_type: fc.oneof({ weight: 10, arbitrary: fc.constantFrom(...RESOURCE_TYPES) }, { weight: 1, arbitrary: text }),
    region: fc.oneof({ weight: 10, arbitrary: fc.constantFrom('eu-west-1', 'us-east-2', 'ap-south-1') }, { weight: 1, arbitrary: text }),
    metric: fc.oneof({ weight: 10, arbitrary: fc.constantFrom(...METRICS) }, { weight: 1, arbitrary: fc.constantFrom('gpu', 'CPU', '') }),
    value: numberText,
    ts: tsText,
    interval_s: fc.oneof({ weight: 10, arbitrary: fc.integer({ min: 1, max: 3600 }).map(String) }, { weight: 1, arbitrary: numberText }),
    attributes,
  })
  .map(({ value, ts, interval_s, ...strings }) => {
    const json = JSON.stringify({ ...strings, value: '\u0001V', ts: '\u0001T', interval_s: '\u0001I' });
    return { text: json.replace('"\\u0001V"', value).replace('"\\u0001T"', ts).replace('"\\u0001I"', interval_s), value };
  });

// ---- the path under test -------------------------------------------------------------

interface StoredRow {
  item: number;
  id: string;
  account_id: string;
  resource_id: string;
  resource_type: string;
  region: string;
  metric: string;
  ts: string;
  interval_s: number;
  value: string;
  attributes: Record<string, string>;
}

describe('ingest accepts exactly what the engine stores', () => {
  let dir: string;
  let ch: ClickHouseClient;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'um-roundtrip-'));
    ch = createClickHouse({ DATA_DIR: dir, CLICKHOUSE_URL: undefined, CLICKHOUSE_USER: 'default', CLICKHOUSE_PASSWORD: '' });
    await migrate(ch);
  });
  afterAll(async () => {
    await ch?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`${ITEMS} hostile items: none accepted that the engine refuses or changes`, async () => {
    const texts = fc.sample(itemText, { numRuns: ITEMS, seed: SEED });
    const accepted: NormalizedSample[] = [];
    /** The value token each accepted sample was written with. */
    const written: string[] = [];
    let undecodable = 0;
    let refused = 0;
    const reasons = new Map<string, number>();
    for (const t of texts) {
      let item: unknown;
      try {
        item = parseJsonText(t.text);
      } catch {
        undecodable++;
        continue;
      }
      const r = parseSample(item, NOW, { oldestTsMs: NOW - 89 * 86_400_000 });
      if (r.ok) {
        accepted.push(r.sample);
        written.push(t.value);
      }
      else {
        refused++;
        for (const e of r.errors) {
          const reason = e.message.replace(/[0-9]+/g, 'N').slice(0, 60);
          reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        }
      }
    }

    const engineRefused: string[] = [];
    const changed: string[] = [];
    const CHUNK = 5000;
    for (let start = 0, batch = 0; start < accepted.length; start += CHUNK, batch++) {
      const samples = accepted.slice(start, start + CHUNK);
      const batchId = `00000000-0000-4000-8000-${String(batch).padStart(12, '0')}`;
      const job = toBatchJob(batchId, batch + 1, NOW, samples);
      try {
        await insertRawRows(ch, job, { insert_deduplication_token: batchId });
      } catch (err) {
        engineRefused.push(...(await culprits(ch, samples, batch, err)));
        continue;
      }
      const rows = await queryRows<StoredRow>(
        ch,
        `SELECT item, id, account_id, resource_id, toString(resource_type) AS resource_type, region, toString(metric) AS metric,
                toString(toUnixTimestamp64Milli(ts)) AS ts, interval_s, toString(value) AS value, attributes
         FROM billing.samples_raw WHERE batch_id = {b:UUID} ORDER BY item`,
        { b: batchId },
      );
      if (rows.length !== samples.length) changed.push(`batch ${batch}: ${samples.length} rows inserted, ${rows.length} stored`);
      for (const row of rows) {
        const s = samples[row.item]!;
        const diff = differences(s, row);
        // The bill must hold the decimal the producer wrote, not merely what validation made of it.
        const token = written[start + row.item]!;
        if (!new Big(token).eq(new Big(row.value))) diff.push(`value written as ${token} stored as ${row.value}`);
        if (diff.length > 0) changed.push(`${JSON.stringify(s.id)}: ${diff.join('; ')}`);
      }
    }

    console.log(`[roundtrip] seed ${SEED}: ${texts.length} items generated, ${accepted.length} accepted, ${refused} refused with a reason, ${undecodable} not decodable; engine refused ${engineRefused.length}, stored changed ${changed.length}`);
    if (process.env.PROPERTY_REASONS) console.log([...reasons].sort((a, b) => b[1] - a[1]).slice(0, 25));
    expect(texts.length).toBe(ITEMS);
    // The generator must exercise both sides of the rule, or the property says nothing.
    expect(accepted.length).toBeGreaterThan(ITEMS / 20);
    expect(refused).toBeGreaterThan(ITEMS / 5);
    expect(engineRefused.slice(0, 10)).toEqual([]);
    expect(changed.slice(0, 10)).toEqual([]);
  });
});

function differences(s: NormalizedSample, row: StoredRow): string[] {
  const out: string[] = [];
  const same = (field: string, a: unknown, b: unknown) => {
    if (a !== b) out.push(`${field} ${JSON.stringify(a)} stored as ${JSON.stringify(b)}`);
  };
  same('id', s.id, row.id);
  same('account_id', s.account_id, row.account_id);
  same('resource_id', s.resource_id, row.resource_id);
  same('resource_type', s.resource_type, row.resource_type);
  same('region', s.region, row.region);
  same('metric', s.metric, row.metric);
  same('ts', String(s.ts_ms), row.ts);
  same('interval_s', s.interval_s, Number(row.interval_s));
  if (!new Big(s.value).eq(new Big(row.value))) out.push(`value ${s.value} stored as ${row.value}`);
  same('attributes', JSON.stringify(sortKeys(s.attributes)), JSON.stringify(sortKeys(row.attributes)));
  return out;
}

const sortKeys = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** The samples of a refused chunk that the engine refuses on their own, by bisection. */
async function culprits(ch: ClickHouseClient, samples: NormalizedSample[], batch: number, err: unknown): Promise<string[]> {
  if (samples.length === 1) return [`${JSON.stringify(samples[0])}: ${(err as Error).message.slice(0, 200)}`];
  const half = Math.ceil(samples.length / 2);
  const out: string[] = [];
  for (const [i, part] of [samples.slice(0, half), samples.slice(half)].entries()) {
    const id = `00000000-0000-4000-9000-${String(batch * 100 + i).padStart(12, '0')}`;
    try {
      await insertRawRows(ch, toBatchJob(id, 1, NOW, part), { insert_deduplication_token: `${id}-${samples.length}` });
    } catch (e) {
      out.push(...(await culprits(ch, part, batch * 2 + i, e)));
    }
  }
  return out;
}
