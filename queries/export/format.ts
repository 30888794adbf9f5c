/**
 * How the billing export is written: NDJSON (one JSON object per line, keys in column
 * order, absent fields left out) or CSV (a header row, empty cells for absent fields),
 * and which of the two a request's Accept header asks for. CSV cells follow csv.ts (RFC 4180
 * quoting; formula-like text neutralized as OWASP says).
 */
import type { ExportRecord } from '../../domain/period-export.js';
import { csvLine } from './csv.js';

/** NDJSON lines are the canonical ones (domain/period-export.ts): one definition of the bytes. */
export { toNdjsonLine } from '../../domain/period-export.js';

export function csvHeader(columns: readonly string[]): string {
  return columns.join(',') + '\n';
}

/** Ids are neutralized as formulas (csv.ts); decimal quantities are numbers and left as written. */
export function toCsvLine(rec: ExportRecord, columns: readonly string[]): string {
  const r = rec as unknown as Record<string, string | undefined>;
  return csvLine(columns.map((c) => r[c]));
}

export const EXPORT_FORMATS = {
  ndjson: { contentType: 'application/x-ndjson; charset=utf-8', extension: 'ndjson' },
  csv: { contentType: 'text/csv; charset=utf-8', extension: 'csv' },
} as const;
export type ExportFormat = keyof typeof EXPORT_FORMATS;

/** NDJSON or CSV from an Accept header (q-values honoured); undefined: neither acceptable. */
export function negotiateFormat(accept: string | undefined): ExportFormat | undefined {
  if (!accept?.trim()) return 'ndjson';
  const ranges = accept
    .split(',')
    .map((part, i) => {
      const [type = '', ...params] = part.trim().toLowerCase().split(';').map((s) => s.trim());
      const q = Number(params.find((p) => p.startsWith('q='))?.slice(2) ?? '1');
      return { type, q: Number.isFinite(q) ? q : 0, i };
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const { type } of ranges) {
    if (type === 'text/csv') return 'csv';
    if (['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/json', 'application/*', '*/*'].includes(type)) return 'ndjson';
    if (type === 'text/*') return 'csv';
  }
  return undefined;
}
