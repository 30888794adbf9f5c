/**
 * An independent bill: the expected base totals of a stream of samples, computed with
 * BigInt from the values as sent, applying the documented rule (the first accepted copy
 * of an id or natural key counts) without any code from the product.
 */
export interface SentSample {
  id: string;
  account_id: string;
  resource_id: string;
  metric: string;
  value: number;
  ts: string | number;
  interval_s: number;
}

const MICRO = 1_000_000n;

/** A JSON number as written by the producer → micro-units, exactly (no float arithmetic). */
export function toMicros(value: number): bigint {
  const text = String(value);
  if (/e/i.test(text)) throw new Error(`oracle: exponent notation not supported: ${text}`);
  const [whole = '0', frac = ''] = text.split('.');
  return BigInt(whole) * MICRO + BigInt((frac + '000000').slice(0, 6));
}

export function formatMicros(micros: bigint): string {
  const whole = micros / MICRO;
  const frac = (micros % MICRO).toString().padStart(6, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : `${whole}`;
}

function hourOf(ts: string | number): number {
  const ms = typeof ts === 'number' ? ts : Date.parse(ts);
  return Math.floor((ms - 1) / 3_600_000);
}

/** Expected base totals by `account|metric`, as decimal strings. Samples in acceptance order. */
export function expectedTotals(accepted: readonly SentSample[]): Map<string, string> {
  const seenIds = new Set<string>();
  const seenKeys = new Set<string>();
  const totals = new Map<string, bigint>();
  for (const s of accepted) {
    const ms = typeof s.ts === 'number' ? s.ts : Date.parse(s.ts);
    const idKey = `${hourOf(s.ts)}|${s.id}`;
    const naturalKey = `${s.account_id}|${s.resource_id}|${s.metric}|${ms}`;
    const dupById = seenIds.has(idKey);
    seenIds.add(idKey);
    if (dupById || seenKeys.has(naturalKey)) continue;
    seenKeys.add(naturalKey);
    const gauge = s.metric === 'memory' || s.metric === 'storage';
    const base = toMicros(s.value) * (gauge ? BigInt(s.interval_s) : 1n);
    const key = `${s.account_id}|${s.metric}`;
    totals.set(key, (totals.get(key) ?? 0n) + base);
  }
  return new Map([...totals].map(([k, v]) => [k, formatMicros(v)]));
}

/** A decimal string from the API ("12.5") → micro-units, for exact comparison. */
export function decimalToMicros(s: string): bigint {
  const [whole = '0', frac = ''] = s.split('.');
  if (frac.length > 6) throw new Error(`more than 6 decimals: ${s}`);
  return BigInt(whole) * MICRO + BigInt(frac.padEnd(6, '0'));
}
