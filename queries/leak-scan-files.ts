/**
 * The leak scanner's reading of export files, split from the scan (leak-scan.ts) because
 * each format has its own parsing and none of it touches the engine: a file becomes its
 * distinct string values by column, bounded like an analytics column, which the scan then
 * checks with the same rules (leak-scan-match.ts).
 * Formats: CSV (with a header), NDJSON, a JSON document (.json), or Parquet.
 */
import { readFileSync } from 'node:fs';
import { MAX_VALUES_PER_SOURCE } from './leak-scan-match.js';

export interface ReadColumns {
  byColumn: Map<string, Set<string>>;
  truncated: Set<string>;
  records: number;
}

/** A file's distinct string values by column, and its record count; the format follows the extension. */
export async function fileColumns(path: string): Promise<ReadColumns> {
  return path.endsWith('.parquet') ? await parquetColumns(path) : textColumns(path);
}

function addValue(read: ReadColumns, column: string, value: unknown): void {
  if (typeof value !== 'string' || value === '') return;
  let set = read.byColumn.get(column);
  if (!set) read.byColumn.set(column, (set = new Set()));
  if (set.size < MAX_VALUES_PER_SOURCE) set.add(value);
  else if (!set.has(value)) read.truncated.add(column);
}

/**
 * Every string inside a JSON value, by its path (`samples[].resource_id`,
 * `samples[].attributes.zone`): an account export nests its rows, and an identifier three
 * levels down is as much a leak as one at the top. Depth is bounded (JSON.parse already
 * refused anything absurd); object keys are values too (a Map column's keys).
 */
function addJson(read: ReadColumns, column: string, value: unknown, depth = 0): void {
  if (depth > 32) return;
  if (Array.isArray(value)) for (const v of value) addJson(read, `${column}[]`, v, depth + 1);
  else if (value !== null && typeof value === 'object') {
    read.records++;
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const path = column === '' ? k : `${column}.${k}`;
      addValue(read, `${column === '' ? '' : column + '.'}(keys)`, k);
      addJson(read, path, v, depth + 1);
    }
  } else addValue(read, column === '' ? '(value)' : column, value);
}

function textColumns(path: string): ReadColumns {
  const read: ReadColumns = { byColumn: new Map(), truncated: new Set(), records: 0 };
  const text = readFileSync(path, 'utf8');
  if (path.endsWith('.json')) {
    addJson(read, '', JSON.parse(text));
    return read;
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (path.endsWith('.csv')) {
    const header = splitCsvLine(lines[0] ?? '');
    for (const line of lines.slice(1)) {
      read.records++;
      splitCsvLine(line).forEach((v, i) => addValue(read, header[i] ?? `#${i}`, v));
    }
  } else {
    for (const line of lines) {
      const before = read.records;
      addJson(read, '', JSON.parse(line));
      if (read.records === before) read.records++; // a line that is not an object is a record too
    }
  }
  return read;
}

function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') (cur += '"'), i++;
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') out.push(cur), (cur = '');
    else cur += c;
  }
  out.push(cur);
  return out;
}

async function parquetColumns(path: string): Promise<ReadColumns> {
  const { parquetReadObjects } = await import('hyparquet');
  const buf = readFileSync(path);
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const read: ReadColumns = { byColumn: new Map(), truncated: new Set(), records: 0 };
  for (const row of await parquetReadObjects({ file })) {
    read.records++;
    for (const [k, v] of Object.entries(row)) addValue(read, k, v);
  }
  return read;
}
