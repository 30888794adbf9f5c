/**
 * The two identities OTLP ingest derives by hashing, deterministic so a retried request
 * lands on the same ones: a Resource's scope in the shared state, and a sample's id.
 * Kept apart because changing either is a migration (state keys, or sample ids billed twice).
 */
import { createHash } from 'node:crypto';

/** One Resource's state scope: every attribute, so two processes on one host are two scopes. */
export function scopeKeyOf(attributes: Readonly<Record<string, string>>): string {
  const sorted = Object.keys(attributes)
    .sort()
    .map((k) => [k, attributes[k]]);
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 32);
}

/** "otlp1-" + hash(mapping@version, account, resource, metric, window end). */
export function otlpSampleId(ref: string, account: string, resource: string, metric: string, endMs: number): string {
  const digest = createHash('sha256').update(JSON.stringify(['otlp', ref, account, resource, metric, endMs])).digest('hex');
  // "otlp1": OTLP ingest, id scheme 1; 160 bits of the hash.
  return `otlp1-${digest.slice(0, 40)}`;
}
