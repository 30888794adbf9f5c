/**
 * OTLP names → Prometheus-style names, so OTLP data is matched by the same mappings
 * (ingest/collectors/mappings/) that read scraped series. The rules follow the
 * OpenTelemetry specification's "Prometheus and OpenMetrics compatibility" translation:
 *
 * - a metric name's characters other than letters, digits, `_` and `:` become `_`
 *   (`system.cpu.time` → `system_cpu_time`), runs of `_` collapse;
 * - the unit is appended as a word unless the name already ends with it (`s` → `_seconds`,
 *   `By` → `_bytes`; `{packets}`-style annotations are dropped; `1` adds `_ratio` to gauges);
 * - a monotonic sum ends in `_total`. Only monotonic sums do, so a mapping's counter rule
 *   (which names `…_total`) cannot match a gauge, nor a gauge rule a counter;
 * - attribute keys become label names the same way (`cpu.mode` → `cpu_mode`); a key that
 *   starts with a digit gets a `key_` prefix. When two keys map to one label, the first wins.
 */

const UNIT_WORDS: Record<string, string> = {
  d: 'days', h: 'hours', min: 'minutes', s: 'seconds', ms: 'milliseconds', us: 'microseconds', ns: 'nanoseconds',
  By: 'bytes', KiBy: 'kibibytes', MiBy: 'mebibytes', GiBy: 'gibibytes', TiBy: 'tebibytes',
  KBy: 'kilobytes', MBy: 'megabytes', GBy: 'gigabytes', TBy: 'terabytes',
  bit: 'bits', m: 'meters', V: 'volts', A: 'amperes', J: 'joules', W: 'watts', g: 'grams', Cel: 'celsius', Hz: 'hertz', '%': 'percent',
};
const PER_WORDS: Record<string, string> = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week', mo: 'month', y: 'year' };

function sanitize(name: string, allowColon: boolean): string {
  const re = allowColon ? /[^a-zA-Z0-9_:]/g : /[^a-zA-Z0-9_]/g;
  return name.replace(re, '_').replace(/_{2,}/g, '_');
}

/** `s` → `seconds`, `By/s` → `bytes_per_second`, `{request}` → '', unknown units sanitized. */
export function unitWord(unit: string): string {
  const plain = unit.replace(/\{[^}]*\}/g, '').trim();
  if (plain === '' || plain === '1') return '';
  const [main = '', per] = plain.split('/', 2);
  const mainWord = UNIT_WORDS[main] ?? sanitize(main, false);
  if (per === undefined) return mainWord.replace(/^_+|_+$/g, '');
  const perWord = PER_WORDS[per] ?? UNIT_WORDS[per] ?? sanitize(per, false);
  return [mainWord, 'per', perWord].filter((w) => w !== '').join('_').replace(/^_+|_+$/g, '');
}

export type OtlpKind = 'gauge' | 'monotonic_sum' | 'non_monotonic_sum';

export function prometheusMetricName(name: string, unit: string, kind: OtlpKind): string {
  let out = sanitize(name, true);
  if (/^[0-9]/.test(out)) out = `_${out}`;
  const word = kind === 'gauge' && unit.trim() === '1' ? 'ratio' : unitWord(unit);
  // The unit goes before a `_total` the name already has: `x_total` in s → `x_seconds_total`.
  const hasTotal = out.endsWith('_total');
  const bare = hasTotal ? out.slice(0, -'_total'.length) : out;
  if (word && bare !== word && !bare.endsWith(`_${word}`)) out = `${bare}_${word}${hasTotal ? '_total' : ''}`;
  if (kind === 'monotonic_sum' && !out.endsWith('_total')) out = `${out}_total`;
  return out;
}

export function prometheusLabelName(key: string): string {
  const out = sanitize(key, false);
  return /^[0-9]/.test(out) ? `key_${out}` : out;
}

/** Attributes → labels (null-prototype, like the scrape parser's): the first key to claim a label wins. */
export function labelsOf(attributes: Readonly<Record<string, string>>, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const labels: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(attributes)) {
    const name = prometheusLabelName(k);
    if (name !== '' && !(name in labels)) labels[name] = v;
  }
  for (const [k, v] of Object.entries(extra)) if (v !== '' && !(k in labels)) labels[k] = v;
  return labels;
}
