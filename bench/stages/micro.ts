/**
 * Stage 7, cost per sample of each step on the ingest → worker path, measured alone in this
 * process (no server, no competing load) on the same simulated batches of 1,000:
 *
 *   json_parse      JSON.parse of the request body (what Fastify does before the handler)
 *   parse_validate  parseSample (zod + exact decimal) per item
 *   to_batch_job    toBatchJob: raw rows serialized to NDJSON
 *   enqueue         the rest of BatchAcceptor.accept: sequence number, in-flight mark and
 *                   BullMQ add on the real Redis (accept − the two above)
 *   worker_fetch    a BullMQ Worker taking those jobs and checking each payload with
 *                   batchJobSchema, as the batch writer does first (its insert is stage 1)
 *
 * CPU is this process's (user + system); Redis's own CPU is read from /proc when its
 * redis-server is visible, and is shared with whatever else uses it.
 *
 *   node --import tsx bench/stages/micro.ts --spec JSON --rounds 3 --prefix P --out FILE
 */
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'bullmq';
import { BatchAcceptor, toBatchJob } from '../../ingest/accept.js';
import { connectRedis } from '../../lib/redis.js';
import { createLogger } from '../../lib/log.js';
import { loadConfig } from '../../schemas/config.js';
import { batchJobSchema, QUEUE_NAMES, redisKeys, type BatchJob } from '../../schemas/queues.js';
import { parseSample, type NormalizedSample } from '../../schemas/sample.js';
import { createBatchQueue } from '../../workers/queues.js';
import { stageArgs, writeResult } from '../lib/child.js';
import { processCpuMs } from '../lib/proc.js';
import { deleteRedisKeys, REDIS_URL } from '../lib/server.js';
import { spread, type Spread } from '../lib/stats.js';
import { requestBodies, type WorkloadSpec } from '../lib/workload.js';

export interface MicroResult {
  samplesPerRound: number;
  /** CPU-µs per sample, median and spread over rounds. */
  cpuUsPerSample: Record<'json_parse' | 'parse_validate' | 'to_batch_job' | 'accept_total' | 'enqueue' | 'worker_fetch', Spread>;
  /** Wall µs per sample of accept (one batch at a time: Redis round trips included). */
  acceptWallUsPerSample: Spread;
  redisServerCpuUsPerSample: Spread | null;
  /** What a batch costs in Redis: the job payload and BullMQ's hash holding it. */
  jobPayloadBytesPerSample: number;
  redisJobMemoryBytesPerSample: number | null;
}

const a = stageArgs();
const spec = JSON.parse(a.spec ?? '{}') as WorkloadSpec;
const rounds = Number(a.rounds ?? 3);
const prefix = a.prefix ?? `umbench-micro-${Date.now().toString(36)}`;

const { bodies } = requestBodies(spec);
const texts = bodies.map((b) => b.toString('utf8'));
const nowMs = Date.now();
let samples = 0;

const cpuUs = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};
const redisPid = (() => {
  try {
    return Number(execFileSync('pgrep', ['-o', 'redis-server'], { encoding: 'utf8' }).trim().split('\n')[0]) || undefined;
  } catch {
    return undefined;
  }
})();

const log = createLogger('silent');
const handle = await connectRedis({ url: REDIS_URL, dataDir: '/tmp', log, startPrivateIfDown: false });
const keys = redisKeys(prefix);
const queue = createBatchQueue({ connection: handle.options, prefix: keys.bullPrefix, attempts: 1 });
// The product's defaults, except the backlog bound: nothing drains this queue until the worker step.
const config = loadConfig({});
const acceptor = new BatchAcceptor({
  redis: handle.client, queue, keys,
  maxBatchItems: config.MAX_BATCH_ITEMS, maxQueuedBatches: 1_000_000, rawRetentionDays: config.RAW_RETENTION_DAYS,
});

const per: Record<string, number[]> = { json_parse: [], parse_validate: [], to_batch_job: [], accept_total: [], enqueue: [], worker_fetch: [] };
const acceptWall: number[] = [];
const redisCpu: number[] = [];
let payloadBytes = 0;
let payloadRows = 0;
let jobMemory: number | null = null;

// Round 0 warms the JIT and the connections up and is not recorded.
for (let r = -1; r < rounds; r++) {
  // JSON.parse of every body.
  let c = cpuUs();
  const parsed = texts.map((t) => (JSON.parse(t) as { samples: unknown[] }).samples);
  per.json_parse!.push((cpuUs() - c) / count(parsed));
  samples = count(parsed);

  // parseSample of every item.
  c = cpuUs();
  const valid: NormalizedSample[][] = parsed.map((items) => {
    const out: NormalizedSample[] = [];
    for (const item of items) {
      const p = parseSample(item, nowMs);
      if (p.ok) out.push(p.sample);
    }
    return out;
  });
  per.parse_validate!.push((cpuUs() - c) / samples);

  // toBatchJob of every batch.
  c = cpuUs();
  const jobs: BatchJob[] = valid.map((v, i) => toBatchJob(`00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, i + 1, nowMs, v));
  per.to_batch_job!.push((cpuUs() - c) / samples);
  if (r === -1) {
    for (const j of jobs) {
      payloadBytes += JSON.stringify(j).length;
      payloadRows += j.rowCount;
    }
  }

  // The whole accept path, one batch at a time, on the real Redis.
  const redis0 = redisPid ? processCpuMs(redisPid) : 0;
  c = cpuUs();
  const w0 = performance.now();
  for (const items of parsed) await acceptor.accept(items, nowMs);
  acceptWall.push(((performance.now() - w0) * 1000) / samples);
  const accept = (cpuUs() - c) / samples;
  per.accept_total!.push(accept);
  per.enqueue!.push(accept - (per.parse_validate!.at(-1) as number) - (per.to_batch_job!.at(-1) as number));
  if (redisPid) redisCpu.push(((processCpuMs(redisPid) - redis0) * 1000) / samples);

  if (r === -1) {
    const [id] = await queue.getJobs(['waiting'], 0, 0);
    if (id?.id) {
      const bytes = (await handle.client.call('MEMORY', 'USAGE', `${keys.bullPrefix}:${QUEUE_NAMES.batches}:${id.id}`, 'SAMPLES', '0')) as number | null;
      if (bytes) jobMemory = bytes / id.data.rowCount;
    }
  }

  // A worker that takes the jobs and validates their payload, nothing else.
  const total = await queue.count();
  let done = 0;
  c = cpuUs();
  const worker = new Worker<BatchJob>(QUEUE_NAMES.batches, async (job) => {
    if (!batchJobSchema.safeParse(job.data).success) throw new Error('bad payload');
    done++;
  }, { connection: handle.options, prefix: keys.bullPrefix, concurrency: 4 });
  while (done < total) await sleep(5);
  per.worker_fetch!.push((cpuUs() - c) / samples);
  await worker.close();
  await queue.obliterate({ force: true });
  if (r === -1) for (const v of Object.values(per)) v.length = 0;
  if (r === -1) {
    acceptWall.length = 0;
    redisCpu.length = 0;
  }
}

const result: MicroResult = {
  samplesPerRound: samples,
  cpuUsPerSample: Object.fromEntries(Object.entries(per).map(([k, v]) => [k, spread(v)])) as MicroResult['cpuUsPerSample'],
  acceptWallUsPerSample: spread(acceptWall),
  redisServerCpuUsPerSample: redisCpu.length ? spread(redisCpu) : null,
  jobPayloadBytesPerSample: payloadBytes / payloadRows,
  redisJobMemoryBytesPerSample: jobMemory,
};
await queue.close();
await handle.close();
await deleteRedisKeys(prefix);
writeResult(a.out, result);

function count(xs: unknown[][]): number {
  return xs.reduce((n, x) => n + x.length, 0);
}
