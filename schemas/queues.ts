/**
 * The message flow in one place: queue names, each job's payload schema, and the Redis keys
 * that ingest and workers share. ingest/ produces these, workers/ consumes them.
 */
import { z } from 'zod';

export const QUEUE_NAMES = {
  /** One job per accepted HTTP batch: write its raw billing rows. */
  batches: 'batches',
  /** One job per erasure request: remove every trace of an account from billing. */
  erasure: 'erasure',
} as const;

export const batchJobSchema = z.object({
  batchId: z.uuid(),
  /** Acceptance order: with the item index it decides which duplicate is "first". */
  batchSeq: z.number().int().nonnegative(),
  acceptedAtMs: z.number().int(),
  /**
   * How `rows` is encoded. Added after the first release: jobs queued before it carry
   * JSONEachRow objects and no field, so absent means JSONEachRow.
   */
  rowFormat: z.enum(['JSONEachRow', 'JSONCompactEachRow']).optional(),
  /** The raw rows, pre-serialized (schemas/raw-row.ts): the worker inserts them without re-encoding. */
  rows: z.string().min(1),
  rowCount: z.number().int().positive(),
  /** Usage hours (epoch seconds) the batch touches: the rollups they make dirty. */
  hours: z.array(z.number().int()).min(1),
  /** Accounts in the batch, so erasure can find queued jobs without decoding rows. */
  accounts: z.array(z.string()).min(1),
});
export type BatchJob = z.infer<typeof batchJobSchema>;

export const erasureJobSchema = z.object({
  requestId: z.uuid(),
  account: z.string().min(1),
  requestedAtMs: z.number().int(),
  /** Why: a data-subject request, or the end of retention after termination. */
  reason: z.enum(['request', 'retention']),
});
export type ErasureJob = z.infer<typeof erasureJobSchema>;

export interface JobPayloads {
  [QUEUE_NAMES.batches]: BatchJob;
  [QUEUE_NAMES.erasure]: ErasureJob;
}
export type QueueName = keyof JobPayloads;

/** Each queue's payload schema: what a processor parses before it trusts a job. */
export const JOB_SCHEMAS: { [Q in QueueName]: z.ZodType<JobPayloads[Q]> } = {
  [QUEUE_NAMES.batches]: batchJobSchema,
  [QUEUE_NAMES.erasure]: erasureJobSchema,
};

const PAYLOAD_NAMES: { [Q in QueueName]: string } = { [QUEUE_NAMES.batches]: 'batch', [QUEUE_NAMES.erasure]: 'erasure' };

/** A payload that can never be processed, with every reason: the job goes straight to the dead letters. */
export class InvalidPayloadError extends Error {
  override name = 'InvalidPayloadError';
}

/** The payload of a job of `queue`, parsed; throws InvalidPayloadError naming each bad field. */
export function parsePayload<Q extends QueueName>(queue: Q, data: unknown): JobPayloads[Q] {
  const parsed = JOB_SCHEMAS[queue].safeParse(data);
  if (parsed.success) return parsed.data;
  throw new InvalidPayloadError(`invalid ${PAYLOAD_NAMES[queue]} payload: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; ')}`);
}

/** Every Redis key the product owns, under the configured prefix. */
export function redisKeys(prefix: string) {
  return {
    /** BullMQ's own prefix: queues live under `${prefix}:bull:<queue>:…`. */
    bullPrefix: `${prefix}:bull`,
    /** INCR counter: the acceptance sequence of batches. */
    batchSeq: `${prefix}:batch-seq`,
    /** ZSET batchId → earliest usage hour: acknowledged batches not yet in ClickHouse. */
    inflight: `${prefix}:inflight`,
    /** ZSET batchId → acceptance sequence: the same batches, for closing periods. */
    inflightSeq: `${prefix}:inflight-seq`,
    /** HASH hour → generation: hours whose aggregates must be recomputed whole. */
    dirtyHours: `${prefix}:dirty-hours`,
    /** ZSET hour → highest batch sequence written into it: hours with rows not folded in yet. */
    pendingHours: `${prefix}:pending-hours`,
    /** HASH hour → generation: hours whose analytics must be recomputed. */
    analyticsHours: `${prefix}:analytics-hours`,
    /** ZSET batchId → sequence: dead-lettered batches, which the fold watermark passes. */
    parkedSeq: `${prefix}:parked-seq`,
    /** The acceptance sequence the rollup folds (or is folding) through. */
    foldWatermark: `${prefix}:fold-watermark`,
    /** Bumped after every change of a billing period's state: readers' caches reload. */
    periodsVersion: `${prefix}:periods-version`,
    /** The acceptance sequence every aggregate is folded through. */
    foldedThrough: `${prefix}:folded-through`,
    /** HASH producer → highest batch sequence number it sent (X-Producer-Seq). */
    producers: `${prefix}:producers`,
    /** ZSET producer → last batch time (ms): idle producers are forgotten (lib/producers.ts). */
    producersSeen: `${prefix}:producers:last-seen`,
    /** ZSET of a producer's missing sequence numbers. */
    producerGaps: (producer: string) => `${prefix}:producer-gaps:${producer}`,
    /** HASH producer → missing numbers beyond the tracked bound. */
    producerUntracked: `${prefix}:producer-untracked`,
    /** SET of accounts being erased: ingest refuses their samples until it is done. */
    erasing: `${prefix}:erasing`,
    /** HASH per erasure request: the account, status, step times and what was removed (kept 90 days). */
    erasureRequest: (id: string) => `${prefix}:erasure:${id}`,
    /** Erased identifiers as one-way fingerprints (domain/erased-identifiers.ts says what must hold). */
    erasedKey: `${prefix}:erased:key`,
    erasedAccounts: `${prefix}:erased:accounts`,
    erasedIdentifiers: `${prefix}:erased:identifiers`,
    erasedDropped: `${prefix}:erased:dropped`,
    /** Rows the engine refused for good, apart from their written batch (lib/quarantine.ts says what must hold). */
    quarantineMeta: `${prefix}:quarantine-meta`,
    quarantineRows: `${prefix}:quarantine-rows`,
    quarantineIndex: `${prefix}:quarantine-index`,
    quarantineAccounts: `${prefix}:quarantine-accounts`,
    quarantineTotal: `${prefix}:quarantine-total`,
    /** OTLP cumulative and gauge state, shared by every ingest process (ingest/otlp/shared-state.ts says what must hold). */
    otlpScope: (scope: string) => `${prefix}:otlp:scope:${scope}`,
    otlpScopes: `${prefix}:otlp:scopes`,
    otlpFloors: `${prefix}:otlp:floors`,
    otlpStateMeta: `${prefix}:otlp:meta`,
    /** Lock held by the worker running a rollup round: one round at a time. */
    rollupLock: `${prefix}:rollup-lock`,
    /** Counter: the last ReplacingMergeTree row version issued, fleet-wide (domain/ledger.ts `nextRowVersion`). */
    rowVersion: `${prefix}:row-version`,
    /** Lock held by the process applying ClickHouse migrations (lib/migrate.ts `migrateUnderLock`). */
    migrationLock: `${prefix}:migration-lock`,
    /** The ClickHouse replica (hostName()) billing rounds last caught up on. */
    writeReplica: `${prefix}:write-replica`,
    /** Locks of the period closer and the retention sweep: one round of each at a time. */
    periodCloseLock: `${prefix}:bull:period-close-lock`,
    retentionSweepLock: `${prefix}:bull:retention-sweep-lock`,
  };
}
export type RedisKeys = ReturnType<typeof redisKeys>;
