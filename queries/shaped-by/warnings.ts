/**
 * The shape of an answer (report.ts) in words: each warning is one sentence a newcomer can
 * act on. An answer emptied by k-anonymity says so, and how many accounts it takes; a
 * partial one says what it leaves out; too little history says how much there is.
 */
import type { AnalyticsShape } from './report.js';

/** What a cell is, coarsest first, in the rollup's generalization ladder (workers/rollup-sql.ts). */
export const COARSEST_CELL = 'region × resource type × metric';
export const FINEST_CELL = 'region × zone × resource type × instance type × metric';

export interface AnswerFacts {
  /** Rows in the answer; undefined when it is streamed and not yet counted. */
  rows?: number;
}

/** True when the range had resources and k suppressed all of them. */
export function emptiedByK(shape: AnalyticsShape): boolean {
  const p = shape.privacy;
  return p.suppressed > 0 && (p.suppressed >= p.resource_hours || p.published_resource_hours === 0);
}

export function shapeWarnings(shape: AnalyticsShape, facts: AnswerFacts = {}): string[] {
  const { privacy: p, history: h } = shape;
  const out: string[] = [];
  const k = p.k;

  if (h.hours === 0) {
    out.push(
      h.analytics_first_hour === null
        ? `${facts.rows === 0 ? '0 rows: ' : ''}analytics hold no data yet: no hour has been rolled up from billing into analytics`
        : `${facts.rows === 0 ? '0 rows: ' : ''}no analytics in this range; analytics hold hours from ${h.analytics_first_hour} to ${h.analytics_last_hour}`,
    );
  } else if (emptiedByK(shape)) {
    out.push(
      `${facts.rows === 0 ? '0 rows: ' : ''}all ${p.peak_suppressed_per_hour} resources in this range (${p.suppressed} resource-hours) were suppressed ` +
        `because fewer than k=${k} accounts share each cell; at least ${k} accounts per ${COARSEST_CELL} are needed ` +
        `for a cell to be published (its instance type and zone then show as '*'), and ${k} per ${FINEST_CELL} to see it in full`,
    );
  } else if (p.suppressed > 0) {
    out.push(
      `${pct(p.suppressed, p.resource_hours)} of the resource-hours in this range (${p.suppressed} of ${p.resource_hours}; up to ` +
        `${p.peak_suppressed_per_hour} resources an hour) were suppressed because fewer than k=${k} accounts share their ` +
        `${COARSEST_CELL} cell: counts and totals here leave them out; each cell needs at least ${k} accounts to be published`,
    );
  }
  if (p.generalized > 0 && !emptiedByK(shape)) {
    out.push(
      `${pct(p.generalized, p.resource_hours)} of the resource-hours in this range (${p.generalized}) were published with their ` +
        `instance type (and perhaps zone) generalized to '*' because fewer than k=${k} accounts share the finer cell: ` +
        `figures per instance type or zone leave them out and show them under '*'`,
    );
  }
  if (h.needs && h.hours > 0 && !h.sufficient) {
    out.push(
      `this answer needs ${h.needs.text} of history${h.window ? ` (${h.window.from} to ${h.window.to})` : ''}; analytics have ` +
        `${duration(h.span_hours)} there (${h.first_hour} to ${h.last_hour}), so it is empty or partial until that much history exists`,
    );
  }
  const stale = p.k_applied.filter((x) => x !== k);
  if (stale.length > 0) out.push(`some hours in this range were published under k=${stale.join(', k=')}; K_ANONYMITY is now ${k}`);
  if (p.scope.includes('fleet-wide') && (p.suppressed > 0 || p.generalized > 0)) {
    out.push('the suppression figures are fleet-wide: the report has no region, so they cover every region, not only the one asked for');
  }
  return out;
}

/**
 * A column of days projected past the data (`-- projects:`): a projection further out than
 * the history it was fitted on is mostly the fit's noise, so it is named.
 */
export function projectionWarning(shape: AnalyticsShape, column: string, rows: readonly Record<string, unknown>[]): string | undefined {
  const spanDays = shape.history.span_hours / 24;
  const far: string[] = [];
  for (const row of rows) {
    const days = Number(row[column]);
    if (row[column] === null || row[column] === undefined || !Number.isFinite(days) || days <= spanDays) continue;
    const label = Object.values(row).find((v) => typeof v === 'string');
    far.push(`${label ?? 'a row'} ${round1(days)} days`);
  }
  if (far.length === 0) return undefined;
  return (
    `${column} projects further than the history it was fitted on (${duration(shape.history.span_hours)}): ` +
    `${far.slice(0, 10).join(', ')}${far.length > 10 ? `, and ${far.length - 10} more` : ''}; a straight-line trend says little beyond that span`
  );
}

export function duration(hours: number): string {
  if (hours < 48) return `${hours} hour${hours === 1 ? '' : 's'}`;
  return `${round1(hours / 24)} days`;
}

function pct(part: number, whole: number): string {
  if (whole === 0) return '0%';
  const v = (100 * part) / whole;
  return `${v < 1 ? v.toFixed(2) : v.toFixed(1).replace(/\.0$/, '')}%`;
}

function round1(x: number): string {
  return String(Math.round(x * 10) / 10);
}
