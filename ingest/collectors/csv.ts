/**
 * CSV rows (RFC 4180: quoted fields, "" escapes, line breaks inside quotes) → wire-format
 * objects for the sink to validate. Conversion here is only what CSV cannot express:
 * numbers, epoch-ms timestamps and attributes. Everything else, including empty required
 * cells, is left for the sink's schema to refuse with its precise message.
 *
 * Columns: id, account_id, resource_id, resource_type, region, metric, value, ts,
 * interval_s, and optionally the wire format's optional fields (an empty cell: absent),
 * `attributes` (a JSON object) and/or `attributes.<name>` cells.
 */
import { sampleInputSchema } from '../../schemas/sample.js';

const FIELDS = Object.keys(sampleInputSchema.shape).filter((k) => k !== 'attributes');
/** Optional wire fields (e.g. `estimated`): a column may be absent, and an empty cell means absent. */
const OPTIONAL = new Set(FIELDS.filter((k) => sampleInputSchema.shape[k as keyof typeof sampleInputSchema.shape].safeParse(undefined).success));
const REQUIRED = FIELDS.filter((k) => !OPTIONAL.has(k));
const NUMERIC = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

export class CsvHeaderError extends Error {
  override name = 'CsvHeaderError';
}

export interface CsvLayout {
  columns: string[];
}

/** Checks the header row; unknown or repeated columns stop the import before anything is sent. */
export function parseCsvHeader(line: string): CsvLayout {
  const cells = splitCsvRecord(line);
  if (cells === undefined) throw new CsvHeaderError('header row has an unterminated quote');
  const columns = cells.map((c) => c.trim());
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c)) throw new CsvHeaderError(`column "${c.slice(0, 64)}" appears twice`);
    seen.add(c);
    if (!FIELDS.includes(c) && c !== 'attributes' && !/^attributes\.[a-z_][a-z0-9_]*$/.test(c)) {
      throw new CsvHeaderError(`unknown column "${c.slice(0, 64)}"; expected ${FIELDS.join(', ')}, attributes or attributes.<name>`);
    }
  }
  const missing = REQUIRED.filter((f) => !seen.has(f));
  if (missing.length > 0) throw new CsvHeaderError(`missing column(s): ${missing.join(', ')}`);
  return { columns };
}

/** True while a record continues on the next line (an odd number of quotes so far). */
export function csvRecordIsOpen(text: string): boolean {
  let quotes = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 34) quotes++;
  return quotes % 2 === 1;
}

/** One record's cells, or undefined when a quote is left open. */
export function splitCsvRecord(text: string): string[] | undefined {
  const cells: string[] = [];
  let cell = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 2;
        continue;
      }
      if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') {
      quoted = true;
    } else if (ch === ',') {
      cells.push(cell);
      cell = '';
    } else {
      cell += ch;
    }
    i++;
  }
  if (quoted) return undefined;
  cells.push(cell);
  return cells;
}

export type CsvRowResult = { ok: true; item: Record<string, unknown> } | { ok: false; message: string };

export function csvRowToItem(layout: CsvLayout, text: string): CsvRowResult {
  const cells = splitCsvRecord(text);
  if (cells === undefined) return { ok: false, message: 'unterminated quoted field' };
  if (cells.length !== layout.columns.length) {
    return { ok: false, message: `expected ${layout.columns.length} fields, found ${cells.length}` };
  }
  const item: Record<string, unknown> = {};
  let attributes: Record<string, unknown> | undefined;
  for (let i = 0; i < cells.length; i++) {
    const column = layout.columns[i]!;
    const cell = cells[i]!;
    if (column === 'attributes') {
      if (cell.trim() === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(cell);
      } catch {
        return { ok: false, message: 'attributes must be a JSON object' };
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        return { ok: false, message: 'attributes must be a JSON object' };
      }
      attributes = { ...attributes, ...(parsed as Record<string, unknown>) };
    } else if (column.startsWith('attributes.')) {
      if (cell !== '') attributes = { ...attributes, [column.slice('attributes.'.length)]: cell };
    } else if (column === 'value' || column === 'interval_s') {
      item[column] = NUMERIC.test(cell.trim()) ? Number(cell.trim()) : cell;
    } else if (column === 'ts') {
      item[column] = /^\d+$/.test(cell.trim()) ? Number(cell.trim()) : cell;
    } else if (OPTIONAL.has(column) && cell === '') {
      continue;
    } else {
      item[column] = cell;
    }
  }
  if (attributes) item.attributes = attributes;
  return { ok: true, item };
}
