/**
 * What a named SQL file says about the data it shapes its answer from, beyond its
 * parameters (sql-file.ts parses the lines, this module gives them meaning):
 *
 *   -- needs: 14 days before to        the query reads the 14 days before `to` and needs all
 *                                      of them (a week-over-week comparison, a forecast)
 *   -- needs: weeks+1 weeks before as_of   the amount may be a UInt32 parameter (+ a constant)
 *   -- needs: 7 days                   within the [from, to) range: a fit on fewer is a guess
 *   -- metrics: storage                the metrics it reads (names from the catalogue, or the
 *                                      name of a metric parameter: its value, all when absent)
 *   -- projects: days_to_capacity      an output column holding days projected past the data
 *
 * Why in the header: the answer then says what shaped it (the suppression report of those
 * metrics and hours, and the history found against the history needed) without a second,
 * hand-kept list of which query needs what.
 */
import { METRICS } from '../../schemas/metrics.js';
import type { ParamSpec } from './params.js';

const HOUR_S = 3600;
const UNIT_HOURS = { hour: 1, day: 24, week: 168 } as const;
type Unit = keyof typeof UNIT_HOURS;

export interface HistoryNeed {
  /** As written, e.g. `14 days before to`. */
  text: string;
  /** A whole number, or the name of a UInt32 parameter. */
  amount: number | string;
  plus: number;
  unit: Unit;
  /** The DateTime parameter the needed history ends at; absent: the query's [from, to). */
  before?: string;
}

export class HistoryHeaderError extends Error {
  override name = 'HistoryHeaderError';
}

const NEEDS = /^(\d{1,4}|[a-z_][a-z0-9_]*)(?:\s*\+\s*(\d{1,4}))?\s+(hour|day|week)s?(?:\s+before\s+([a-z_][a-z0-9_]*))?$/;

export function parseNeeds(text: string, file: string): HistoryNeed {
  const m = NEEDS.exec(text.trim());
  if (!m) throw new HistoryHeaderError(`${file}: needs must look like "14 days", "14 days before to" or "weeks+1 weeks before as_of", not ${JSON.stringify(text)}`);
  const amount = /^\d+$/.test(m[1]!) ? Number(m[1]) : m[1]!;
  return { text: text.trim(), amount, plus: Number(m[2] ?? 0), unit: m[3] as Unit, ...(m[4] ? { before: m[4] } : {}) };
}

export function parseMetricsHeader(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

/** Checks the history lines against the declared parameters, at load. */
export function checkHistoryHeader(file: { name: string; params: readonly ParamSpec[]; needs?: HistoryNeed; metrics?: string[] }): void {
  const param = (n: string) => file.params.find((p) => p.name === n);
  const { needs, metrics } = file;
  if (needs) {
    if (typeof needs.amount === 'string' && param(needs.amount)?.kind !== 'UInt32') {
      throw new HistoryHeaderError(`${file.name}: needs counts in ${needs.amount}, which is not a UInt32 parameter`);
    }
    if (needs.before !== undefined) {
      if (param(needs.before)?.kind !== 'DateTime') throw new HistoryHeaderError(`${file.name}: needs … before ${needs.before}, which is not a DateTime parameter`);
    } else if (param('from')?.kind !== 'DateTime' || param('to')?.kind !== 'DateTime') {
      throw new HistoryHeaderError(`${file.name}: needs without "before <param>" applies to [from, to), which the query does not take`);
    }
  }
  for (const m of metrics ?? []) {
    if ((METRICS as readonly string[]).includes(m)) continue;
    const p = param(m);
    if (!p || p.kind !== 'Enum' || !p.enumValues!.every((v) => (METRICS as readonly string[]).includes(v))) {
      throw new HistoryHeaderError(`${file.name}: metrics lists ${m}, which is neither a metric (${METRICS.join(', ')}) nor a metric parameter`);
    }
  }
}

type Bound = Record<string, string | number | null>;

/** Hours of history the query needs with these parameters (0 when it declares none). */
export function neededHours(needs: HistoryNeed | undefined, bound: Bound): number {
  if (!needs) return 0;
  const amount = typeof needs.amount === 'number' ? needs.amount : Number(bound[needs.amount] ?? 0);
  return (amount + needs.plus) * UNIT_HOURS[needs.unit];
}

/** `14 days`, `3 weeks` as the needs line reads with these parameters. */
export function neededText(needs: HistoryNeed, bound: Bound): string {
  const n = neededHours(needs, bound) / UNIT_HOURS[needs.unit];
  return `${n} ${needs.unit}${n === 1 ? '' : 's'}`;
}

/** The hours the query reads, [from, to) in epoch seconds; undefined: it has no range. */
export function queryWindow(file: { params: readonly ParamSpec[]; needs?: HistoryNeed }, bound: Bound): { fromS: number; toS: number } | undefined {
  const { needs } = file;
  if (needs?.before !== undefined) {
    const toS = Number(bound[needs.before]);
    return { fromS: toS - neededHours(needs, bound) * HOUR_S, toS };
  }
  const from = bound.from;
  const to = bound.to;
  const isTime = (n: string) => file.params.some((p) => p.name === n && p.kind === 'DateTime');
  if (isTime('from') && isTime('to') && typeof from === 'number' && typeof to === 'number') return { fromS: from, toS: to };
  return undefined;
}

/** The metrics the query reads with these parameters; undefined: all of them. */
export function queryMetrics(file: { metrics?: string[] }, bound: Bound): string[] | undefined {
  if (!file.metrics?.length) return undefined;
  const out = new Set<string>();
  for (const m of file.metrics) {
    if ((METRICS as readonly string[]).includes(m)) out.add(m);
    else if (typeof bound[m] === 'string') out.add(bound[m]);
    else return undefined; // an optional metric parameter left out: every metric
  }
  return [...out];
}
