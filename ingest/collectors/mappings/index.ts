/**
 * The mappings a target may name: the shipped ones plus any declared in the targets file.
 * A target names a mapping as `name` (its highest version) or `name@version` (pinned).
 */
import { libvirtMapping } from './libvirt.js';
import { nodeExporterMapping } from './node-exporter.js';
import { mappingRef, type Mapping } from './schema.js';

export { defineMapping, mappingRef, mappingSchema } from './schema.js';
export type { LabelMatcher, Mapping, MetricRule, SeriesTerm, ValueSource } from './schema.js';
export { libvirtMapping, nodeExporterMapping };

export const BUILTIN_MAPPINGS: readonly Mapping[] = [nodeExporterMapping, libvirtMapping];

export class MappingRegistry {
  private readonly byRef = new Map<string, Mapping>();
  private readonly latest = new Map<string, Mapping>();

  /** Throws on two mappings with the same name and version: which one billed would be ambiguous. */
  constructor(mappings: readonly Mapping[] = BUILTIN_MAPPINGS) {
    for (const m of mappings) {
      const ref = mappingRef(m);
      if (this.byRef.has(ref)) throw new Error(`mapping ${ref} is declared twice`);
      this.byRef.set(ref, m);
      const current = this.latest.get(m.name);
      if (!current || current.version < m.version) this.latest.set(m.name, m);
    }
  }

  /** `node_exporter` or `node_exporter@1`; undefined when unknown. */
  resolve(ref: string): Mapping | undefined {
    return ref.includes('@') ? this.byRef.get(ref) : this.latest.get(ref);
  }

  refs(): string[] {
    return [...this.byRef.keys()].sort();
  }
}
