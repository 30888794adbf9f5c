/**
 * Named SQL files: a header of `--` comments says what the query answers and declares its
 * typed parameters; the body uses them as ClickHouse bound parameters (`{name:Type}`).
 * The header is the single source of the parameters' zod schema, of the API listing and
 * of the CLI help, and the body is checked against it when the file is loaded.
 *
 *   -- title: Daily CPU utilization per region × instance type
 *   -- description: For each UTC day …
 *   --   lines indented under a field continue it
 *   -- param from: DateTime = now-30d | first hour included (UTC)
 *   -- param region: String? | only this region
 *   -- param granularity: Enum(day, week, month) = day | period length
 *   -- param weeks: UInt32[1..8] = 2 | weeks of history
 *   -- column hour: UTC | start of the hour          (datasets: an output column's unit)
 *   -- schema_version: 1                              (datasets)
 *   -- series: region, metric                         (datasets: what identifies a series)
 *   -- needs: 14 days before to                       (the history it needs: history-header.ts)
 *   -- metrics: storage                               (the metrics it reads, for its privacy report)
 *   -- projects: days_to_capacity                     (a column of days projected past the data)
 *
 * Parameter types and the placeholder type the body must use for them:
 *   DateTime → {p:DateTime('UTC')} (RFC 3339 with zone, YYYY-MM-DD, epoch ms, or now±N[hdw])
 *   Date     → {p:Date}            String, Enum(…) → {p:String}
 *   UInt32   → {p:UInt32}          Float64 → {p:Float64}
 * An optional parameter (`Type?`) is passed as NULL when absent: {p:Nullable(…)}.
 *
 * Facts about metric kinds are never written in a file by hand: `{{…}}` placeholders are
 * filled from the metric catalogue (schemas/metrics.ts) before anything else, in the header
 * and the body alike, so a new kind reaches every query and its documentation:
 *   {{metric_names}}            cpu, memory, …            (e.g. `Enum({{metric_names}})`)
 *   {{natural_units}}           vCPU (busy vCPUs), GiB …  (documentation; also {{base_units}}, {{natural_per_hour_text}})
 *   {{natural_per_hour(col)}}   multiIf(col = 'cpu', 3600, …): hourly base total ÷ this = natural value
 *   {{natural_unit(col)}}       multiIf(col = 'cpu', 'vCPU', …)
 *   {{base_unit(col)}}          multiIf(col = 'cpu', 'vCPU-second', …)
 * The multiIf fragments have no catch-all branch: a metric the catalogue lacks stops the
 * query. An unknown placeholder is a load error.
 */
import { readFileSync } from 'node:fs';
import { baseUnitSql, baseUnitsText, metricNamesText, naturalPerHourSql, naturalPerHourText, naturalUnitSql, naturalUnitsText } from '../../schemas/metrics.js';
import { paramValueSchema, type ParamKind, type ParamSpec } from './params.js';
import { checkHistoryHeader, HistoryHeaderError, parseMetricsHeader, parseNeeds, type HistoryNeed } from './history-header.js';

export type { ParamKind, ParamSpec } from './params.js';

export { describeParam, paramsSchema, parseRelativeTime, resolveParams, type ParamsResult, type ResolvedParams } from './params.js';

export interface ColumnDoc {
  name: string;
  unit: string;
  description: string;
}

export interface SqlFile {
  /** File name without `.sql`. */
  name: string;
  title: string;
  description: string;
  params: ParamSpec[];
  columns: ColumnDoc[];
  schemaVersion?: number;
  /** Datasets: the columns that identify one series (`-- series: region, metric`). */
  series?: string[];
  /** The history the answer needs (`-- needs:`), checked against the data when it runs. */
  needs?: HistoryNeed;
  /** The metrics it reads (`-- metrics:`): metric names or a metric parameter's name. */
  metrics?: string[];
  /** An output column holding days projected beyond the data (`-- projects:`). */
  projects?: string;
  /** The SQL after the header. */
  body: string;
}

export class SqlFileError extends Error {
  override name = 'SqlFileError';
}

/** Names a request may not use for a parameter: they select the output. */
export const RESERVED_PARAM_NAMES = new Set(['format']);

const FIELD = /^--\s(title|description|schema_version|series|needs|metrics|projects):\s*(.*)$/;
const PARAM = /^--\s+param\s+([a-z_][a-z0-9_]*):\s*([A-Za-z0-9]+)(\([^)]*\))?(\[[^\]]*\])?(\?)?\s*(?:=\s*([^|]*?))?\s*(?:\|\s*(.*))?$/;
const COLUMN = /^--\s+column\s+([a-z_][a-z0-9_]*):\s*([^|]*?)\s*(?:\|\s*(.*))?$/;
const CONTINUATION = /^--\s{2,}(\S.*)$/;

export function loadSqlFile(url: URL, name: string): SqlFile {
  return parseSqlFile(readFileSync(url, 'utf8'), name);
}

const CATALOGUE_VALUES: Record<string, () => string> = {
  metric_names: metricNamesText,
  natural_units: naturalUnitsText,
  base_units: baseUnitsText,
  natural_per_hour_text: naturalPerHourText,
};
const CATALOGUE_FRAGMENTS: Record<string, (col: string) => string> = {
  natural_per_hour: naturalPerHourSql,
  natural_unit: naturalUnitSql,
  base_unit: baseUnitSql,
};

/** Fills `{{…}}` placeholders from the metric catalogue (see the header of this module). */
export function expandCatalogue(text: string, name: string): string {
  const out = text.replace(/\{\{\s*([a-z_]+)(?:\(\s*([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)\s*\))?\s*\}\}/g, (whole, key: string, col?: string) => {
    if (col !== undefined && key in CATALOGUE_FRAGMENTS) return CATALOGUE_FRAGMENTS[key]!(col);
    if (col === undefined && key in CATALOGUE_VALUES) return CATALOGUE_VALUES[key]!();
    throw new SqlFileError(`${name}: unknown catalogue placeholder ${whole}`);
  });
  if (out.includes('{{')) throw new SqlFileError(`${name}: malformed catalogue placeholder near ${out.slice(out.indexOf('{{'), out.indexOf('{{') + 40)}`);
  return out;
}

export function parseSqlFile(source: string, name: string): SqlFile {
  const text = expandCatalogue(source, name);
  const lines = text.split('\n');
  const file: SqlFile = { name, title: '', description: '', params: [], columns: [], body: '' };
  // Where a continuation line goes: the field or parameter above it.
  let continueInto: ((s: string) => void) | undefined;
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i]!.trimEnd();
    if (!line.startsWith('--')) break;
    const cont = CONTINUATION.exec(line);
    if (cont && continueInto) {
      continueInto(cont[1]!);
      continue;
    }
    const field = FIELD.exec(line);
    const param = PARAM.exec(line);
    const column = COLUMN.exec(line);
    if (field) {
      const [, key, value = ''] = field;
      if (key === 'title') {
        file.title = value;
        continueInto = (s) => (file.title += ` ${s}`);
      } else if (key === 'description') {
        file.description = value;
        continueInto = (s) => (file.description += ` ${s}`);
      } else if (key === 'series') {
        file.series = value.split(',').map((c) => c.trim()).filter(Boolean);
        continueInto = undefined;
      } else if (key === 'needs') {
        file.needs = asLoadError(() => parseNeeds(value, name));
        continueInto = undefined;
      } else if (key === 'metrics') {
        file.metrics = parseMetricsHeader(value);
        continueInto = undefined;
      } else if (key === 'projects') {
        if (!/^[a-z_][a-z0-9_]*$/.test(value.trim())) throw new SqlFileError(`${name}: projects names one output column`);
        file.projects = value.trim();
        continueInto = undefined;
      } else {
        file.schemaVersion = Number(value);
        if (!Number.isInteger(file.schemaVersion) || file.schemaVersion < 1) throw new SqlFileError(`${name}: schema_version must be a whole number ≥ 1`);
        continueInto = undefined;
      }
    } else if (param) {
      const spec = parseParam(name, param);
      file.params.push(spec);
      continueInto = (s) => (spec.description = `${spec.description} ${s}`.trim());
    } else if (column) {
      const doc: ColumnDoc = { name: column[1]!, unit: column[2]!.trim(), description: (column[3] ?? '').trim() };
      file.columns.push(doc);
      continueInto = (s) => (doc.description = `${doc.description} ${s}`.trim());
    } else if (line.trim() === '--') {
      continueInto = undefined;
    } else {
      throw new SqlFileError(`${name}: header line ${i + 1} is not a title, description, param or column: ${line}`);
    }
  }
  file.body = lines.slice(i).join('\n').trim();
  if (!file.title) throw new SqlFileError(`${name}: the header has no title`);
  if (!file.description) throw new SqlFileError(`${name}: the header has no description`);
  if (!file.body) throw new SqlFileError(`${name}: no SQL after the header`);
  const seen = new Set<string>();
  for (const p of file.params) {
    if (seen.has(p.name)) throw new SqlFileError(`${name}: parameter ${p.name} is declared twice`);
    seen.add(p.name);
  }
  checkPlaceholders(file);
  asLoadError(() => checkHistoryHeader(file));
  return file;
}

function asLoadError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof HistoryHeaderError) throw new SqlFileError(err.message);
    throw err;
  }
}

function parseParam(file: string, m: RegExpExecArray): ParamSpec {
  const [, pname = '', kindText = '', enumPart, rangePart, optionalMark, defaultText, description] = m;
  if (RESERVED_PARAM_NAMES.has(pname)) throw new SqlFileError(`${file}: ${pname} is reserved and cannot be a parameter`);
  const kinds: ParamKind[] = ['DateTime', 'Date', 'String', 'UInt32', 'Float64', 'Enum'];
  if (!kinds.includes(kindText as ParamKind)) throw new SqlFileError(`${file}: parameter ${pname} has unknown type ${kindText}`);
  const spec: ParamSpec = { name: pname, kind: kindText as ParamKind, optional: optionalMark === '?', description: (description ?? '').trim() };
  if (spec.kind === 'Enum') {
    const values = (enumPart ?? '').replace(/^\(|\)$/g, '').split(',').map((v) => v.trim()).filter(Boolean);
    if (values.length === 0) throw new SqlFileError(`${file}: Enum parameter ${pname} lists no values`);
    spec.enumValues = values;
  } else if (enumPart) {
    throw new SqlFileError(`${file}: only Enum takes a value list (${pname})`);
  }
  if (rangePart) {
    if (spec.kind !== 'UInt32' && spec.kind !== 'Float64') throw new SqlFileError(`${file}: only numbers take a range (${pname})`);
    const r = /^\[(-?\d+(?:\.\d+)?(?:e\d+)?)\.\.(-?\d+(?:\.\d+)?(?:e\d+)?)\]$/.exec(rangePart);
    if (!r) throw new SqlFileError(`${file}: range of ${pname} must look like [1..8]`);
    spec.min = Number(r[1]);
    spec.max = Number(r[2]);
  }
  if (defaultText !== undefined && defaultText !== '') {
    if (spec.optional) throw new SqlFileError(`${file}: ${pname} is optional and cannot also have a default`);
    spec.default = defaultText.trim();
    // A default must itself be a valid value: fail at load, not on the first request.
    const check = paramValueSchema(spec).safeParse(spec.default);
    if (!check.success) throw new SqlFileError(`${file}: default of ${pname} is invalid: ${check.error.issues[0]?.message}`);
  }
  return spec;
}

/** The ClickHouse placeholder type the body must use for a parameter. */
export function placeholderType(p: ParamSpec): string {
  const base = { DateTime: "DateTime('UTC')", Date: 'Date', String: 'String', Enum: 'String', UInt32: 'UInt32', Float64: 'Float64' }[p.kind];
  return p.optional ? `Nullable(${base})` : base;
}

/** Every placeholder names a declared parameter with its declared type; every parameter is used. */
function checkPlaceholders(file: SqlFile): void {
  const byName = new Map(file.params.map((p) => [p.name, p]));
  const used = new Set<string>();
  for (const m of file.body.matchAll(/\{\s*([A-Za-z_]\w*)\s*:\s*([^{}]+?)\s*\}/g)) {
    const [, pname = '', type = ''] = m;
    const spec = byName.get(pname);
    if (!spec) throw new SqlFileError(`${file.name}: the SQL uses {${pname}:…}, which the header does not declare`);
    const want = placeholderType(spec);
    if (type.replace(/\s+/g, '') !== want.replace(/\s+/g, '')) {
      throw new SqlFileError(`${file.name}: {${pname}:${type}} should be {${pname}:${want}} (declared ${spec.kind}${spec.optional ? '?' : ''})`);
    }
    used.add(pname);
  }
  for (const p of file.params) if (!used.has(p.name)) throw new SqlFileError(`${file.name}: parameter ${p.name} is declared but the SQL never uses it`);
}
