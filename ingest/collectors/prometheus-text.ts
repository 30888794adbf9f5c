/**
 * A parser for the Prometheus text exposition format (version 0.0.4), the format
 * node_exporter, the libvirt exporters and nearly every exporter answer with.
 *
 * Exporter answers are untrusted input: a misconfigured target may return an HTML page, a
 * protobuf body, a truncated response or something hostile. So the parser is a single
 * linear pass with no backtracking regular expressions, every size is bounded, and any
 * defect rejects the whole exposition with a `PromParseError` naming the line and column.
 * Rejecting the whole scrape (as Prometheus does) is deliberate: a half-parsed answer could
 * silently drop, say, half the CPUs of a host and under-bill it.
 *
 * Accepted beyond 0.0.4, because exporters emit them when content negotiation goes their
 * way: OpenMetrics' `# EOF` terminator and its extra TYPE names (mapped to `untyped`).
 * Not accepted: hexadecimal float values (no known exporter writes them).
 */

import { Cursor, isNameChar, PromParseError } from './prometheus-cursor.js';

export { PromParseError };

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface PromSample {
  /** The sample's own name, e.g. `http_requests_total` or `rpc_duration_seconds_sum`. */
  name: string;
  /** Label set; a null-prototype object so a label called `__proto__` is just a label. */
  labels: Readonly<Record<string, string>>;
  /** May be NaN or ±Infinity: the format allows them, callers decide what they mean. */
  value: number;
  /** Exporter-supplied timestamp (epoch ms), rarely present. */
  timestampMs?: number;
  /** 1-based line in the exposition, for error messages further down the pipeline. */
  line: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help?: string;
  samples: PromSample[];
}

export interface ParseLimits {
  maxChars: number;
  maxLineLength: number;
  maxSamples: number;
  maxLabelsPerSample: number;
  maxNameLength: number;
  maxLabelValueLength: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = {
  maxChars: 64 * 1024 * 1024,
  maxLineLength: 64 * 1024,
  maxSamples: 2_000_000,
  maxLabelsPerSample: 64,
  maxNameLength: 512,
  maxLabelValueLength: 16 * 1024,
};

const TYPE_NAMES: Readonly<Record<string, MetricType>> = {
  counter: 'counter',
  gauge: 'gauge',
  histogram: 'histogram',
  summary: 'summary',
  untyped: 'untyped',
  // OpenMetrics names: kept parseable, treated as untyped.
  unknown: 'untyped',
  info: 'untyped',
  stateset: 'untyped',
  gaugehistogram: 'untyped',
};

/** Sample-name suffixes that belong to a family of the given type (`_total` for OpenMetrics counters). */
const SUFFIXES: Readonly<Record<MetricType, readonly string[]>> = {
  counter: ['_total', '_created'],
  gauge: [],
  histogram: ['_bucket', '_sum', '_count', '_created'],
  summary: ['_sum', '_count', '_created'],
  untyped: [],
};

// Linear-time checks: anchored, and no two quantifiers compete for the same characters,
// so a long hostile token cannot make them backtrack.
const FLOAT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const INTEGER = /^-?\d{1,19}$/;
const MAX_VALUE_TOKEN = 64;

/**
 * Parses a whole exposition. Throws `PromParseError` on anything that is not the format;
 * never returns a partial result.
 */
export function parsePrometheusText(text: string, limits: Partial<ParseLimits> = {}): MetricFamily[] {
  const lim = { ...DEFAULT_PARSE_LIMITS, ...limits };
  if (text.length > lim.maxChars) {
    throw new PromParseError(0, 0, `exposition is longer than ${lim.maxChars} characters`);
  }
  const state = new ParserState(lim);
  let start = 0;
  let lineNo = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    lineNo++;
    let line = text.slice(start, end);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.length > lim.maxLineLength) {
      throw new PromParseError(lineNo, 1, `line is longer than ${lim.maxLineLength} characters`);
    }
    if (state.handleLine(line, lineNo) === 'eof') break;
    start = end + 1;
  }
  return state.families();
}

class ParserState {
  private readonly byName = new Map<string, MetricFamily>();
  /** Which family a sample name belongs to, once TYPE lines have declared them. */
  private readonly ownerOfSample = new Map<string, MetricFamily>();
  private readonly seenSeries = new Set<string>();
  private readonly typed = new Set<string>();
  private sampleCount = 0;

  constructor(private readonly lim: ParseLimits) {}

  families(): MetricFamily[] {
    return [...this.byName.values()];
  }

  handleLine(line: string, lineNo: number): 'eof' | void {
    const c = new Cursor(line, lineNo);
    c.skipBlanks();
    if (c.atEnd()) return;
    if (c.peek() === '#') return this.comment(c);
    this.sample(c);
  }

  private comment(c: Cursor): 'eof' | void {
    c.next(); // '#'
    c.skipBlanks();
    const keyword = c.readWhile(isNameChar);
    if (keyword === 'EOF' && c.restIsBlank()) return 'eof';
    if (keyword !== 'HELP' && keyword !== 'TYPE') return; // any other comment is ignored
    if (!c.skipBlanks()) return; // "# HELPER ..." style text is just a comment
    const nameCol = c.column();
    const name = c.readMetricName(this.lim.maxNameLength);
    if (name === '') c.fail(`expected a metric name after # ${keyword}`, nameCol);
    const family = this.familyFor(name);
    if (keyword === 'HELP') {
      if (family.help !== undefined) c.fail(`second HELP line for metric "${name}"`, nameCol);
      family.help = c.atEnd() ? '' : (c.expectBlank(), c.readHelpText());
      return;
    }
    c.expectBlank();
    c.skipBlanks();
    const typeCol = c.column();
    const typeName = c.readWhile(isNameChar).toLowerCase();
    const type = TYPE_NAMES[typeName];
    if (type === undefined) c.fail(`unknown metric type "${typeName.slice(0, 32)}"`, typeCol);
    if (!c.restIsBlank()) c.fail('unexpected text after the metric type');
    if (family.samples.length > 0) c.fail(`TYPE line for "${name}" after its samples`, nameCol);
    if (this.typed.has(name)) c.fail(`second TYPE line for metric "${name}"`, nameCol);
    this.typed.add(name);
    family.type = type;
    this.ownerOfSample.set(name, family);
    for (const suffix of SUFFIXES[type]) this.ownerOfSample.set(name + suffix, family);
  }

  private sample(c: Cursor): void {
    const name = c.readMetricName(this.lim.maxNameLength);
    if (name === '') c.fail('expected a metric name, a comment or a blank line');
    const labels: Record<string, string> = Object.create(null);
    let labelCount = 0;
    const blankAfterName = c.skipBlanks();
    if (c.peek() === '{') {
      c.next();
      for (;;) {
        c.skipBlanks();
        if (c.peek() === '}') break;
        const labelCol = c.column();
        const labelName = c.readLabelName(this.lim.maxNameLength);
        if (labelName === '') c.fail('expected a label name or "}"');
        c.skipBlanks();
        c.expect('=', `expected "=" after label name "${labelName}"`);
        c.skipBlanks();
        c.expect('"', `expected a quoted value for label "${labelName}"`);
        const value = c.readLabelValue(this.lim.maxLabelValueLength);
        if (Object.hasOwn(labels, labelName)) c.fail(`duplicate label "${labelName}"`, labelCol);
        if (++labelCount > this.lim.maxLabelsPerSample) {
          c.fail(`more than ${this.lim.maxLabelsPerSample} labels on one sample`, labelCol);
        }
        labels[labelName] = value;
        c.skipBlanks();
        if (c.peek() === ',') {
          c.next();
          continue;
        }
        if (c.peek() !== '}') c.fail('expected "," or "}" in the label set');
      }
      c.next(); // '}'
    } else if (!blankAfterName && !c.atEnd()) {
      // The name ran straight into something that is neither a blank nor "{".
      c.fail('invalid character in metric name');
    }
    c.skipBlanks();
    const valueCol = c.column();
    const valueToken = c.readToken(MAX_VALUE_TOKEN + 1);
    if (valueToken === '') c.fail('expected a sample value', valueCol);
    const value = parseValue(valueToken);
    if (value === undefined) c.fail('sample value is not a number', valueCol);
    let timestampMs: number | undefined;
    if (c.skipBlanks() && !c.atEnd()) {
      const tsCol = c.column();
      const tsToken = c.readToken(21);
      if (!INTEGER.test(tsToken) || !Number.isSafeInteger(Number(tsToken))) {
        c.fail('timestamp must be whole epoch milliseconds', tsCol);
      }
      timestampMs = Number(tsToken);
      if (!c.restIsBlank()) c.fail('unexpected text after the timestamp');
    } else if (!c.atEnd()) {
      c.fail('unexpected text after the sample value');
    }

    const seriesKey = seriesKeyOf(name, labels);
    if (this.seenSeries.has(seriesKey)) c.fail(`duplicate series for metric "${name}"`, 1);
    this.seenSeries.add(seriesKey);
    if (++this.sampleCount > this.lim.maxSamples) c.fail(`more than ${this.lim.maxSamples} samples`, 1);

    const family = this.ownerOfSample.get(name) ?? this.familyFor(name);
    const sample: PromSample = { name, labels, value: value as number, line: c.lineNo };
    if (timestampMs !== undefined) sample.timestampMs = timestampMs;
    family.samples.push(sample);
  }

  private familyFor(name: string): MetricFamily {
    let family = this.byName.get(name);
    if (!family) {
      family = { name, type: 'untyped', samples: [] };
      this.byName.set(name, family);
    }
    return family;
  }
}

function parseValue(token: string): number | undefined {
  if (token.length > MAX_VALUE_TOKEN) return undefined;
  if (FLOAT.test(token)) return Number(token);
  const lower = token.toLowerCase();
  const unsigned = lower.startsWith('+') || lower.startsWith('-') ? lower.slice(1) : lower;
  if (unsigned === 'inf' || unsigned === 'infinity') return lower.startsWith('-') ? -Infinity : Infinity;
  if (lower === 'nan') return NaN;
  return undefined;
}

/** A canonical identity for a series: the name and its labels sorted by name. */
export function seriesKeyOf(name: string, labels: Readonly<Record<string, string>>): string {
  const keys = Object.keys(labels).sort();
  // JSON quoting makes the key unambiguous whatever the label values contain.
  return JSON.stringify([name, ...keys.flatMap((k) => [k, labels[k]])]);
}
