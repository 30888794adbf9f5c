/**
 * A batch job made as ingest makes it (validated samples, a claimed acceptance sequence), but
 * not queued: for tests that play the worker, or put a job on the queue themselves.
 */
import { randomUUID } from 'node:crypto';
import { claimSequence } from '../../domain/ledger.js';
import { toBatchJob } from '../../ingest/accept.js';
import type { BatchJob } from '../../schemas/queues.js';
import { parseSample, type NormalizedSample } from '../../schemas/sample.js';
import type { SentSample } from './oracle.js';
import type { TestPipeline } from './pipeline.js';

export async function batchJobOf(p: Pick<TestPipeline, 'redis' | 'redisKeys'>, samples: SentSample[]): Promise<BatchJob> {
  const normalized = samples.map((s) => {
    const r = parseSample(s, Date.now());
    if (!r.ok) throw new Error(`test sample invalid: ${JSON.stringify(r.errors)}`);
    return r.sample;
  }) as NormalizedSample[];
  const batchId = randomUUID();
  const hours = normalized.map((s) => Math.floor((s.ts_ms - 1) / 3_600_000) * 3600);
  const seq = await claimSequence(p.redis.client, p.redisKeys, batchId, Math.min(...hours));
  return toBatchJob(batchId, seq, Date.now(), normalized);
}
