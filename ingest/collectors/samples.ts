/**
 * Usage windows → wire-format samples, with deterministic ids.
 *
 * The id is a hash of (mapping@version, target, account, resource, metric, window end). A
 * window end is a scrape slot on the target's fixed time grid, so scraping the same slot
 * again — a retry, a second collector replica, a restarted process — yields the same id and
 * the pipeline's idempotency drops the copy. The natural key (account, resource, metric, ts)
 * is the same too, which covers a collector that was re-configured under another target id.
 */
import { createHash } from 'node:crypto';
import type { Metric, SampleInput } from '../../schemas/sample.js';
import type { UsageWindow } from './counters.js';
import type { ResourceIdentity } from './mappings/apply.js';

export interface WindowOwner {
  identity: ResourceIdentity;
  metric: Metric;
}

export interface SampleContext {
  /** `name@version` of the mapping that produced the windows. */
  mappingRef: string;
  targetId: string;
}

export interface SamplesResult {
  samples: SampleInput[];
  /** Windows whose value cannot be written exactly on the wire (beyond 2^53 units). */
  unrepresentable: number;
}

export function windowsToSamples(
  ctx: SampleContext,
  owners: ReadonlyMap<string, WindowOwner>,
  windows: readonly UsageWindow[],
): SamplesResult {
  const samples: SampleInput[] = [];
  let unrepresentable = 0;
  for (const w of windows) {
    const owner = owners.get(w.key);
    if (!owner) throw new Error(`no owner for usage window ${w.key}`); // a programming error
    if (w.units > BigInt(Number.MAX_SAFE_INTEGER)) {
      unrepresentable++;
      continue;
    }
    const { identity, metric } = owner;
    const sample: SampleInput = {
      id: sampleId(ctx, identity, metric, w.endMs),
      account_id: identity.account_id,
      resource_id: identity.resource_id,
      resource_type: identity.resource_type,
      region: identity.region,
      metric,
      // units / scale: an integer over 10^6 at most, which float64 rounds to the same
      // decimal the pipeline's exactValue() recovers, so no binary rounding reaches a bill.
      value: Number(w.units) / w.scale,
      ts: w.endMs,
      interval_s: (w.endMs - w.startMs) / 1000,
    };
    if (Object.keys(identity.attributes).length > 0) sample.attributes = { ...identity.attributes };
    if (w.estimated) sample.estimated = w.estimated; // provenance travels to the raw row
    samples.push(sample);
  }
  return { samples, unrepresentable };
}

export function sampleId(ctx: SampleContext, identity: ResourceIdentity, metric: Metric, endMs: number): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([ctx.mappingRef, ctx.targetId, identity.account_id, identity.resource_id, metric, endMs]))
    .digest('hex');
  // "pc1": pull collector, id scheme 1. 160 bits of the hash: collisions are not a concern.
  return `pc1-${digest.slice(0, 40)}`;
}
