/** Plain aligned tables for terminal output; numbers right-aligned. */

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
