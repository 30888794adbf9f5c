/** Plain aligned tables for terminal output; numbers right-aligned. */
export function printTable(rows: readonly Record<string, unknown>[], out: (s: string) => void = console.log): void {
  if (rows.length === 0) {
    out('  (no rows)');
    return;
  }
  const cols = Object.keys(rows[0]!);
  const cells = rows.map((r) => cols.map((c) => String(r[c] ?? '')));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const numeric = cols.map((_c, i) => cells.every((row) => /^-?[\d.,]+$/.test(row[i]!)));
  const fmt = (vals: string[]) => '  ' + vals.map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ');
  out(fmt(cols));
  out('  ' + widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of cells) out(fmt(row));
}
