/** Plain aligned tables for terminal output; numbers right-aligned. */
import type { ShapeSummary } from '../queries/shaped-by/headers.js';

/**
 * A cell as the terminal should see it: control characters (an escape sequence stored in
 * an id before ids were checked) are shown as \u{…} instead of being obeyed, and a newline
 * cannot break the table's rows.
 */
function shown(v: unknown): string {
  return String(v ?? '').replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}

export function printTable(rows: readonly Record<string, unknown>[], out: (s: string) => void = console.log): void {
  if (rows.length === 0) {
    out('  (no rows)');
    return;
  }
  const cols = Object.keys(rows[0]!);
  const header = cols.map(shown);
  const cells = rows.map((r) => cols.map((c) => shown(r[c])));
  const widths = header.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const numeric = cols.map((_c, i) => cells.every((row) => /^-?[\d.,]+$/.test(row[i]!)));
  const fmt = (vals: string[]) => '  ' + vals.map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ');
  out(fmt(header));
  out('  ' + widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of cells) out(fmt(row));
}

/**
 * The footer under an analytics answer (on stderr, so stdout stays the table, CSV or JSON
 * alone): k, what k suppressed or generalized in the answer's hours, the history, and each
 * warning on a line of its own. Built from the response headers (shaped-by/headers.ts),
 * which the CLI also derives when it reads ClickHouse directly: one footer for both paths.
 */
export function shapeFooter(s: ShapeSummary): string[] {
  const parts = [`k=${s.k ?? '?'}`];
  if (s.resourceHours !== undefined) {
    parts.push(`${s.suppressed ?? 0} of ${s.resourceHours} resource-hours suppressed, ${s.generalized ?? 0} generalized`);
  }
  const h = s.history;
  if (h.hours !== undefined) {
    const range = h.first ? ` (${h.first} to ${h.last})` : '';
    parts.push(`history ${h.hours} h with data${range}${h.needs ? `, needs ${h.needs} h` : ''}`);
  }
  return [`-- ${parts.join(' · ')}`, ...s.warnings.map((w) => `-- warning: ${shown(w)}`)];
}
