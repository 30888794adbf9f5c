/** The wire format, rule by rule: each broken alone gives its own specific error. */
import { describe, expect, it } from 'vitest';
import { exactValue, parseSample } from '../schemas/sample.js';

const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);
const valid = {
  id: 'sample-1',
  account_id: 'acct-1',
  resource_id: 'vm-1',
  resource_type: 'vm',
  region: 'eu-west-1',
  metric: 'cpu',
  value: 12.5,
  ts: '2026-11-29T11:59:00Z',
  interval_s: 60,
  attributes: { instance_type: 'm5.large' },
};

function errorsOf(item: unknown) {
  const r = parseSample(item, NOW);
  if (r.ok) throw new Error('expected the item to be refused');
  return r.errors;
}

describe('sample validation', () => {
  it('accepts a valid sample and normalizes it', () => {
    const r = parseSample(valid, NOW);
    expect(r).toEqual({
      ok: true,
      sample: {
        id: 'sample-1', account_id: 'acct-1', resource_id: 'vm-1', resource_type: 'vm', region: 'eu-west-1', metric: 'cpu',
        value: '12.5', ts_ms: Date.parse('2026-11-29T11:59:00Z'), interval_s: 60, attributes: { instance_type: 'm5.large' },
      },
    });
  });

  it('accepts epoch milliseconds and offsets other than Z', () => {
    const a = parseSample({ ...valid, ts: Date.parse('2026-11-29T11:59:00Z') }, NOW);
    const b = parseSample({ ...valid, ts: '2026-11-29T12:59:00+01:00' }, NOW);
    expect(a.ok && b.ok && a.sample.ts_ms === b.sample.ts_ms).toBe(true);
  });

  const cases: [string, Record<string, unknown>, { path: string; message: string }][] = [
    ['missing id', { id: undefined }, { path: 'id', message: 'id is required' }],
    ['empty id', { id: '' }, { path: 'id', message: 'id must not be empty' }],
    ['id too long', { id: 'x'.repeat(129) }, { path: 'id', message: 'id must be at most 128 characters' }],
    ['control character in account', { account_id: 'a\u0000b' }, { path: 'account_id', message: 'account_id must not contain control characters' }],
    ['account id not a string', { account_id: 42 }, { path: 'account_id', message: 'account_id must be a string' }],
    ['resource id too long', { resource_id: 'r'.repeat(257) }, { path: 'resource_id', message: 'resource_id must be at most 256 characters' }],
    ['unknown resource type', { resource_type: 'toaster' }, { path: 'resource_type', message: 'resource_type must be one of vm, volume, database, bucket, load_balancer, network' }],
    ['bad region', { region: 'EU West' }, { path: 'region', message: 'region must be lower-case letters, digits and dashes, e.g. eu-west-1' }],
    // gpu became a kind (schemas/metrics.ts): the unknown metric is now another accelerator.
    ['unknown metric', { metric: 'tpu' }, { path: 'metric', message: 'metric must be one of cpu, memory, storage, bandwidth_in, bandwidth_out, gpu' }],
    ['negative value', { value: -1 }, { path: 'value', message: 'value must not be negative' }],
    ['value as string', { value: '12' }, { path: 'value', message: 'value must be a number' }],
    ['infinite value', { value: Number.POSITIVE_INFINITY }, { path: 'value', message: 'value must be finite' }],
    ['cpu with 7 decimals', { value: 0.1234567 }, { path: 'value', message: 'cpu value must have at most 6 decimal places' }],
    ['cpu too large', { value: 1e10 }, { path: 'value', message: 'cpu value must be at most 999999999.999999 vCPU-seconds' }],
    ['gpu with 7 decimals', { metric: 'gpu', value: 0.1234567 }, { path: 'value', message: 'gpu value must have at most 6 decimal places' }],
    ['gpu too large', { metric: 'gpu', value: 1e10 }, { path: 'value', message: 'gpu value must be at most 999999999.999999 GPU-seconds' }],
    ['fractional bytes', { metric: 'memory', value: 1.5 }, { path: 'value', message: 'memory value must be a whole number of bytes' }],
    ['bytes beyond 2^53', { metric: 'bandwidth_in', value: 2 ** 53 }, { path: 'value', message: 'bandwidth_in value must be at most 9007199254740991 bytes' }],
    ['ts without zone', { ts: '2026-11-29T11:59:00' }, { path: 'ts', message: 'ts must be an RFC 3339 timestamp with a time zone' }],
    ['ts garbage', { ts: 'yesterday' }, { path: 'ts', message: 'ts must be an RFC 3339 timestamp with a time zone' }],
    ['ts of another type', { ts: true }, { path: 'ts', message: 'ts must be an RFC 3339 string or epoch milliseconds' }],
    ['ts far future', { ts: '2027-01-01T00:00:00Z' }, { path: 'ts', message: 'ts must not be more than 5 minutes in the future' }],
    ['ts before 2000', { ts: '1999-12-31T23:59:59Z' }, { path: 'ts', message: 'ts must be on or after 2000-01-01T00:00:00Z' }],
    ['ts fractional ms', { ts: 1.5 }, { path: 'ts', message: 'ts must be an RFC 3339 string or epoch milliseconds' }],
    ['interval zero', { interval_s: 0 }, { path: 'interval_s', message: 'interval_s must be at least 1' }],
    ['interval too long', { interval_s: 3601 }, { path: 'interval_s', message: 'interval_s must be at most 3600' }],
    ['interval fractional', { interval_s: 1.5 }, { path: 'interval_s', message: 'interval_s must be a whole number of seconds' }],
    ['attribute not a string', { attributes: { plan: 3 } }, { path: 'attributes.plan', message: 'attribute values must be strings' }],
    ['attribute name', { attributes: { 'Bad Name': 'x' } }, { path: 'attributes.Bad Name', message: 'attribute names must be snake_case' }],
    ['attribute value too long', { attributes: { plan: 'p'.repeat(257) } }, { path: 'attributes.plan', message: 'attribute values must be at most 256 characters' }],
    ['too many attributes', { attributes: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`a${i}`, 'x'])) }, { path: 'attributes', message: 'at most 16 attributes' }],
  ];

  it.each(cases)('%s', (_name, change, expected) => {
    const item = { ...valid, ...change };
    for (const [k, v] of Object.entries(change)) if (v === undefined) delete (item as Record<string, unknown>)[k];
    expect(errorsOf(item)).toEqual([expected]);
  });

  it('refuses samples older than the raw retention can keep', () => {
    const oldest = NOW - 89 * 86_400_000;
    const r = parseSample({ ...valid, ts: new Date(oldest - 1).toISOString() }, NOW, { oldestTsMs: oldest });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors).toEqual([{ path: 'ts', message: `ts is older than the raw-sample retention allows (${new Date(oldest).toISOString()}); it can no longer be billed` }]);
    expect(parseSample({ ...valid, ts: new Date(oldest).toISOString() }, NOW, { oldestTsMs: oldest }).ok).toBe(true);
  });

  it('refuses unknown fields by name', () => {
    const errors = errorsOf({ ...valid, customer_email: 'a@b.c' });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toContain('customer_email');
  });

  it('refuses non-objects', () => {
    for (const item of [null, 42, 'sample', [valid]]) expect(errorsOf(item)).toEqual([{ path: '(item)', message: 'a sample must be a JSON object' }]);
  });

  it('does not choke on hostile strings', () => {
    const errors = errorsOf({ ...valid, account_id: "x'); DROP TABLE billing.samples_raw; --".repeat(10) });
    expect(errors).toEqual([{ path: 'account_id', message: 'account_id must be at most 128 characters' }]);
    const r = parseSample({ ...valid, account_id: "acct'); DROP TABLE t; --" }, NOW);
    expect(r.ok && r.sample.account_id).toBe("acct'); DROP TABLE t; --"); // stored as data, bound, never interpolated
  });
});

describe('exact values', () => {
  it('recovers the decimal the producer wrote', () => {
    expect(exactValue('cpu', 0.1)).toBe('0.1');
    expect(exactValue('cpu', 999999999.999999)).toBe('999999999.999999');
    expect(exactValue('cpu', 0.000001)).toBe('0.000001');
    expect(exactValue('cpu', 3)).toBe('3');
    expect(exactValue('storage', 9007199254740991)).toBe('9007199254740991');
    expect(exactValue('bandwidth_out', 0)).toBe('0');
  });

  it('keeps GPU-seconds to 6 decimals, like vCPU-seconds', () => {
    expect(exactValue('gpu', 0.1)).toBe('0.1');
    expect(exactValue('gpu', 999999999.999999)).toBe('999999999.999999');
    expect(exactValue('gpu', 7200)).toBe('7200');
    expect(exactValue('gpu', 12.000001)).toBe('12.000001');
    const r = parseSample({ ...valid, metric: 'gpu', value: 3599.999999 }, NOW);
    expect(r).toMatchObject({ ok: true, sample: { metric: 'gpu', value: '3599.999999' } });
  });
});
