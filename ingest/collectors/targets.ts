/**
 * The scrape target list: a JSON file (COLLECTOR_TARGETS_FILE) and/or the same document
 * inline (COLLECTOR_TARGETS), validated with zod. JSON rather than YAML so the runtime needs
 * no parser dependency.
 *
 * The caller passes the two settings in (from the config module): nothing here reads
 * process.env. A bad list throws `TargetConfigError` naming the source, the target and the
 * field, so the process stops at start rather than collecting half the fleet.
 *
 * Document shape (a bare array of targets is accepted too):
 *   {
 *     "defaults": { "region": "eu-west-1", "interval_s": 60, "timeout_ms": 10000 },
 *     "mappings": [ …extra mappings, same schema as mappings/schema.ts… ],
 *     "targets": [
 *       { "id": "host-17", "url": "http://10.0.0.17:9100/metrics", "mapping": "node_exporter",
 *         "labels": { "account_id": "acct-42", "resource_id": "vm-17" },
 *         "attributes": { "instance_type": "m5.large" } },
 *       { "id": "hv-3", "url": "http://10.0.1.3:9177/metrics", "mapping": "libvirt@1" }
 *     ]
 *   }
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { RESOURCE_TYPES, sampleInputSchema, type ResourceType } from '../../schemas/sample.js';
import { BUILTIN_MAPPINGS, MappingRegistry } from './mappings/index.js';
import { mappingSchema, type Mapping } from './mappings/schema.js';

export interface TargetSpec {
  /** Stable name: part of every sample id, so renaming a target restarts its baselines. */
  id: string;
  url: string;
  /** `name` or `name@version`. */
  mapping: string;
  region: string;
  /** Overrides the mapping's resource type (e.g. a node_exporter on a database host). */
  resource_type?: ResourceType;
  /** Values a mapping may use for identity (`target_label` sources), e.g. account_id. */
  labels: Record<string, string>;
  /** Wire-format attributes added to every sample of the target. */
  attributes: Record<string, string>;
  /** Scrape period; windows end on multiples of it since the epoch. */
  interval_s: number;
  timeout_ms: number;
}

export interface ResolvedTarget extends TargetSpec {
  mappingDef: Mapping;
}

export interface TargetList {
  targets: ResolvedTarget[];
  mappings: MappingRegistry;
}

export class TargetConfigError extends Error {
  override name = 'TargetConfigError';
}

const DEFAULT_INTERVAL_S = 60;
const DEFAULT_TIMEOUT_MS = 10_000;

const labelsSchema = z
  .record(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'label names must be letters, digits and _'), z.string().max(256))
  .refine((r) => Object.keys(r).length <= 64, 'at most 64 labels');
const attributesSchema = sampleInputSchema.shape.attributes;
const regionSchema = sampleInputSchema.shape.region;

const overridableFields = {
  region: regionSchema.optional(),
  resource_type: z.enum(RESOURCE_TYPES).optional(),
  labels: labelsSchema.optional(),
  attributes: attributesSchema,
  interval_s: z.number().int().min(1).max(3600).optional(),
  timeout_ms: z.number().int().min(100).max(600_000).optional(),
};

const targetInputSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'id must be 1-128 letters, digits, . _ : -'),
    url: z
      .url({ protocol: /^https?$/, error: 'url must be an http(s) URL' })
      .refine((u) => {
        const parsed = new URL(u);
        return parsed.username === '' && parsed.password === '';
      }, 'url must not carry credentials: they would end up in logs and status'),
    mapping: z.string().min(1),
    ...overridableFields,
  })
  .strict();

/** Settings every target may have, which `defaults` gives to those that do not. */
const defaultsSchema = z.object(overridableFields).strict();

const documentSchema = z
  .object({
    defaults: defaultsSchema.optional(),
    mappings: z.array(mappingSchema).optional(),
    targets: z.array(targetInputSchema),
  })
  .strict();
type TargetDocument = z.output<typeof documentSchema>;

export interface LoadTargetsOptions {
  /** COLLECTOR_TARGETS_FILE: path of a JSON targets document. */
  file?: string;
  /** COLLECTOR_TARGETS: the same document inline (handy in containers and tests). */
  inline?: string;
}

/** Reads, validates and resolves the target list. An empty list is valid: nothing to scrape. */
export async function loadTargets(opts: LoadTargetsOptions): Promise<TargetList> {
  const docs: Array<{ source: string; doc: TargetDocument }> = [];
  if (opts.file) {
    let text: string;
    try {
      text = await readFile(opts.file, 'utf8');
    } catch (err) {
      throw new TargetConfigError(`COLLECTOR_TARGETS_FILE: cannot read ${opts.file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    docs.push({ source: `COLLECTOR_TARGETS_FILE (${opts.file})`, doc: parseDocument(text, `COLLECTOR_TARGETS_FILE (${opts.file})`) });
  }
  if (opts.inline && opts.inline.trim() !== '') {
    docs.push({ source: 'COLLECTOR_TARGETS', doc: parseDocument(opts.inline, 'COLLECTOR_TARGETS') });
  }
  return resolveTargets(docs);
}

/** Validates one document's text; exported for tests and for callers holding JSON already. */
export function parseDocument(text: string, source: string): TargetDocument {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new TargetConfigError(`${source}: not valid JSON`);
  }
  // A bare array is shorthand for { "targets": [...] }; unwrapping it first (rather than a
  // zod union) keeps error messages pointing at the field that is wrong.
  const parsed = documentSchema.safeParse(Array.isArray(raw) ? { targets: raw } : raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.slice(0, 20).map((i) => `  ${formatPath(i.path)}: ${i.message}`);
    throw new TargetConfigError(`${source}: invalid target list:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

export function resolveTargets(docs: ReadonlyArray<{ source: string; doc: TargetDocument }>): TargetList {
  let mappings: MappingRegistry;
  try {
    mappings = new MappingRegistry([...BUILTIN_MAPPINGS, ...docs.flatMap((d) => d.doc.mappings ?? [])]);
  } catch (err) {
    throw new TargetConfigError(`mappings: ${(err as Error).message}`);
  }
  const errors: string[] = [];
  const seen = new Set<string>();
  const targets: ResolvedTarget[] = [];
  for (const { source, doc } of docs) {
    const d = doc.defaults ?? {};
    doc.targets.forEach((t, i) => {
      const where = `${source}: targets[${i}] (${t.id})`;
      if (seen.has(t.id)) errors.push(`${where}: duplicate target id`);
      seen.add(t.id);
      const mappingDef = mappings.resolve(t.mapping);
      if (!mappingDef) {
        errors.push(`${where}.mapping: unknown mapping "${t.mapping}" (known: ${mappings.refs().join(', ')})`);
        return;
      }
      const region = t.region ?? d.region;
      if (!region) errors.push(`${where}.region: required (here or in defaults)`);
      const interval_s = t.interval_s ?? d.interval_s ?? DEFAULT_INTERVAL_S;
      const timeout_ms = t.timeout_ms ?? d.timeout_ms ?? Math.min(DEFAULT_TIMEOUT_MS, interval_s * 1000);
      if (timeout_ms > interval_s * 1000) errors.push(`${where}.timeout_ms: must not exceed interval_s (${interval_s} s)`);
      const labels = { ...d.labels, ...t.labels };
      // A mapping that can only take the account from the target needs the label here;
      // failing now beats a target that silently bills nothing.
      for (const field of ['account_id', 'resource_id'] as const) {
        const sources = mappingDef[field];
        if (sources.every((s) => s.from === 'target_label') && !sources.some((s) => labels[s.name])) {
          const names = sources.map((s) => (s.from === 'target_label' ? s.name : '')).join(' or ');
          errors.push(`${where}.labels: mapping ${t.mapping} takes ${field} from the target label ${names}, which is missing`);
        }
      }
      const resource_type = t.resource_type ?? d.resource_type;
      targets.push({
        id: t.id,
        url: t.url,
        mapping: t.mapping,
        region: region ?? '',
        ...(resource_type ? { resource_type } : {}),
        labels,
        attributes: { ...d.attributes, ...t.attributes },
        interval_s,
        timeout_ms,
        mappingDef,
      });
    });
  }
  if (errors.length > 0) throw new TargetConfigError(`invalid target list:\n${errors.map((e) => `  ${e}`).join('\n')}`);
  return { targets, mappings };
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('') || '(document)';
}

/** A URL safe for logs and status: no query string (exporters sometimes take tokens there). */
export function displayUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}
