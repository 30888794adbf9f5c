/**
 * The shape of an answer as HTTP response headers, for answers whose body is streamed (CSV,
 * ad-hoc SQL, datasets) and, alike, for JSON ones: a client reads the same fields whatever
 * the format. The CLI reads them back (parseShapeHeaders) for its footer, also when it
 * read ClickHouse directly, so both paths print the same line.
 *
 *   X-Analytics-K: 10                          K_ANONYMITY
 *   X-Analytics-Resource-Hours: 160            resource-hours in range (suppression report)
 *   X-Analytics-Suppressed-Resources: 160      of which suppressed
 *   X-Analytics-Generalized-Resources: 0       of which published under '*'
 *   X-Analytics-History: hours=3; span=3; needs=336; first=…; last=…
 *   Warning: 199 usage-meter "…"               one per warning (RFC 9111 §5.5 syntax)
 */
import type { AnalyticsShape } from './report.js';

export const SHAPE_HEADERS = {
  k: 'x-analytics-k',
  resourceHours: 'x-analytics-resource-hours',
  suppressed: 'x-analytics-suppressed-resources',
  generalized: 'x-analytics-generalized-resources',
  history: 'x-analytics-history',
  warning: 'warning',
} as const;

const WARN_AGENT = 'usage-meter';

/** Header values are ASCII: the few non-ASCII signs the warnings use get ASCII spellings. */
export function headerText(s: string): string {
  return s
    .replace(/×/g, 'x')
    .replace(/≥/g, '>=')
    .replace(/[–—]/g, '-')
    .replace(/[^\x20-\x7e]/g, '?');
}

export function shapeHeaders(shape: AnalyticsShape, warnings: readonly string[]): Record<string, string | string[]> {
  const { privacy: p, history: h } = shape;
  const history = [`hours=${h.hours}`, `span=${h.span_hours}`, ...(h.needs ? [`needs=${h.needs.hours}`] : []), ...(h.first_hour ? [`first=${h.first_hour}`, `last=${h.last_hour}`] : [])];
  return {
    [SHAPE_HEADERS.k]: String(p.k),
    [SHAPE_HEADERS.resourceHours]: String(p.resource_hours),
    [SHAPE_HEADERS.suppressed]: String(p.suppressed),
    [SHAPE_HEADERS.generalized]: String(p.generalized),
    [SHAPE_HEADERS.history]: history.join('; '),
    ...(warnings.length > 0 ? { [SHAPE_HEADERS.warning]: warnings.map((w) => `199 ${WARN_AGENT} "${headerText(w).replace(/[\\"]/g, (c) => `\\${c}`)}"`) } : {}),
  };
}

/** What the CLI footer shows, read back from the headers. */
export interface ShapeSummary {
  k: number | undefined;
  resourceHours: number | undefined;
  suppressed: number | undefined;
  generalized: number | undefined;
  history: Record<string, string>;
  warnings: string[];
}

/** `get` is Headers.get (several Warning headers arrive joined by ", "). */
export function parseShapeHeaders(get: (name: string) => string | null): ShapeSummary | undefined {
  const k = get(SHAPE_HEADERS.k);
  if (k === null) return undefined;
  const num = (name: string) => {
    const v = get(name);
    return v === null || !/^\d+$/.test(v) ? undefined : Number(v);
  };
  const history: Record<string, string> = {};
  for (const part of (get(SHAPE_HEADERS.history) ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) history[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  const warnings = [...(get(SHAPE_HEADERS.warning) ?? '').matchAll(/199 [^ ]+ "((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'));
  return { k: num(SHAPE_HEADERS.k), resourceHours: num(SHAPE_HEADERS.resourceHours), suppressed: num(SHAPE_HEADERS.suppressed), generalized: num(SHAPE_HEADERS.generalized), history, warnings };
}

/** The headers as a `get` function, for an answer computed in-process (the CLI without --url). */
export function headerGetter(headers: Record<string, string | string[]>): (name: string) => string | null {
  return (name) => {
    const v = headers[name.toLowerCase()];
    return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
  };
}
