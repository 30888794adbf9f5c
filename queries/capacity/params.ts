/**
 * The values of a named SQL file's parameters (sql-file.ts declares them): one zod schema
 * per file built from its header, so what a query accepts is exactly what it declares.
 * Values arrive as strings (a query string, `--param k=v`) and leave as what ClickHouse
 * binds: DateTime as epoch seconds, absent optional parameters as NULL.
 */
import { z } from 'zod';
import { API_TIME_MIN_MS, API_TIME_MAX_MS, parseTimeBound, toIso } from '../../lib/time.js';
import { printable } from '../../schemas/text.js';

const HOUR_MS = 3_600_000;
const RELATIVE = /^now(?:([+-])(\d{1,4})([hdw]))?$/;
const UNIT_MS = { h: HOUR_MS, d: 24 * HOUR_MS, w: 7 * 24 * HOUR_MS } as const;


export type ParamKind = 'DateTime' | 'Date' | 'String' | 'UInt32' | 'Float64' | 'Enum';

export interface ParamSpec {
  name: string;
  kind: ParamKind;
  optional: boolean;
  /** As written in the header, e.g. `now-30d`; parsed like a value. */
  default?: string;
  enumValues?: string[];
  /** Inclusive bounds for UInt32 / Float64. */
  min?: number;
  max?: number;
  description: string;
}

/** `now`, `now-30d`, `now+12h`, `now-2w`: relative to the start of the current hour. */
export function parseRelativeTime(raw: string, nowMs = Date.now()): number | undefined {
  const m = RELATIVE.exec(raw);
  if (!m) return undefined;
  const base = Math.floor(nowMs / HOUR_MS) * HOUR_MS;
  if (!m[1]) return base;
  const delta = Number(m[2]) * UNIT_MS[m[3] as keyof typeof UNIT_MS];
  return m[1] === '-' ? base - delta : base + delta;
}

/** One parameter's value as it arrives (a string from a URL or the command line). */
export function paramValueSchema(p: ParamSpec): z.ZodType<string | number> {
  const text = z.union([z.string(), z.number()]).transform((v) => String(v).trim());
  switch (p.kind) {
    case 'DateTime':
      return text.transform((raw, ctx) => {
        const ms = parseRelativeTime(raw) ?? parseTimeBound(raw);
        if (ms === undefined || !Number.isFinite(ms)) {
          ctx.addIssue({ code: 'custom', message: 'must be RFC 3339 with a time zone, YYYY-MM-DD, epoch ms, or now / now-30d / now+12h' });
          return z.NEVER;
        }
        if (ms < API_TIME_MIN_MS || ms >= API_TIME_MAX_MS) {
          ctx.addIssue({ code: 'custom', message: `must be from ${toIso(API_TIME_MIN_MS)} up to ${toIso(API_TIME_MAX_MS)} (exclusive), as every API time bound` });
          return z.NEVER;
        }
        return Math.floor(ms / 1000);
      });
    case 'Date':
      return text.refine((s) => /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(`${s}T00:00:00Z`)), 'must be a date, YYYY-MM-DD');
    case 'String':
      // The text rule ingest applies to ids and labels (schemas/text.ts).
      return text.pipe(printable(z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters')));
    case 'Enum':
      return text.pipe(z.enum(p.enumValues as [string, ...string[]], { error: `must be one of ${p.enumValues!.join(', ')}` }));
    case 'UInt32':
    case 'Float64': {
      const isInt = p.kind === 'UInt32';
      return text.transform((raw, ctx) => {
        const ok = isInt ? /^\d{1,10}$/.test(raw) : /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(raw);
        const n = Number(raw);
        const lo = p.min ?? (isInt ? 0 : -Number.MAX_VALUE);
        const hi = p.max ?? (isInt ? 4_294_967_295 : Number.MAX_VALUE);
        if (!ok || !Number.isFinite(n)) {
          ctx.addIssue({ code: 'custom', message: isInt ? 'must be a whole number ≥ 0' : 'must be a number' });
          return z.NEVER;
        }
        if (n < lo || n > hi) {
          ctx.addIssue({ code: 'custom', message: `must be between ${lo} and ${hi}` });
          return z.NEVER;
        }
        return n;
      });
    }
  }
}

/** The zod schema of a file's parameters: unknown names are refused, defaults applied. */
export function paramsSchema(file: { name: string; params: readonly ParamSpec[] }) {
  const shape: Record<string, z.ZodType> = {};
  for (const p of file.params) {
    const value = paramValueSchema(p);
    // prefault: the default goes through the same parsing as a given value (now-30d → seconds).
    shape[p.name] = p.default !== undefined ? value.prefault(p.default) : p.optional ? value.optional() : value;
  }
  return z.object(shape).strict();
}

export interface ResolvedParams {
  /** What ClickHouse binds: DateTime as epoch seconds, absent optionals as null. */
  bound: Record<string, string | number | null>;
  /** The same values for people: DateTime as ISO 8601. */
  shown: Record<string, string | number | null>;
}

export type ParamsResult = ResolvedParams | { error: string };

/** Validates raw parameters (strings from a query string or `--param k=v`). */
export function resolveParams(file: { name: string; params: readonly ParamSpec[] }, raw: Record<string, unknown>): ParamsResult {
  const missing = file.params.filter((p) => !p.optional && p.default === undefined && (raw[p.name] === undefined || raw[p.name] === ''));
  if (missing.length > 0) return { error: missing.map((p) => `${p.name} is required`).join('; ') };
  const parsed = paramsSchema(file).safeParse(raw);
  if (!parsed.success) {
    const known = file.params.map((p) => p.name).join(', ') || '(none)';
    return {
      error: parsed.error.issues
        .map((i) => {
          if (i.code === 'unrecognized_keys') return `unknown parameter ${i.keys.join(', ')}; ${file.name} takes ${known}`;
          return `${String(i.path[0] ?? '')} ${i.message}`;
        })
        .join('; '),
    };
  }
  const data = parsed.data as Record<string, string | number | undefined>;
  const bound: ResolvedParams['bound'] = {};
  const shown: ResolvedParams['shown'] = {};
  for (const p of file.params) {
    const v = data[p.name];
    bound[p.name] = v ?? null;
    shown[p.name] = v === undefined ? null : p.kind === 'DateTime' ? toIso(Number(v) * 1000) : v;
  }
  return { bound, shown };
}

/** A parameter as the API and the CLI describe it. */
export function describeParam(p: ParamSpec) {
  return {
    name: p.name,
    type: p.kind === 'Enum' ? `Enum(${p.enumValues!.join(', ')})` : p.kind,
    required: !p.optional && p.default === undefined,
    ...(p.default !== undefined ? { default: p.default } : {}),
    ...(p.min !== undefined ? { min: p.min, max: p.max } : {}),
    description: p.description,
  };
}
