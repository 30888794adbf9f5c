/**
 * Queues and their retry policy, written once. A batch job retries with exponential
 * backoff; once its attempts are spent it stays in BullMQ's failed set, the dead-letter
 * set, with its data and reason, until someone replays or erases it. Nothing is dropped.
 */
import { Queue, UnrecoverableError, type ConnectionOptions, type DefaultJobOptions } from 'bullmq';
import { InvalidPayloadError, parsePayload, QUEUE_NAMES, type BatchJob, type ErasureJob, type JobPayloads, type QueueName } from '../schemas/queues.js';

export interface QueueSettings {
  connection: ConnectionOptions;
  prefix: string;
  attempts: number;
}

export function batchJobOptions(attempts: number): DefaultJobOptions {
  return {
    attempts,
    // 1 s, 2 s, 4 s … : long enough to ride out a ClickHouse restart without hammering it.
    backoff: { type: 'exponential', delay: 1000 },
    // Completed jobs are only kept briefly for tracing: each holds its batch (~250 KB).
    removeOnComplete: { age: 600, count: 100 },
    // Failed jobs are the dead letters of acknowledged batches: never removed automatically,
    // only by a replay or an erasure (`usage-meter dead-letters`).
    removeOnFail: false,
  };
}

interface AttemptCount {
  attemptsMade?: number;
  opts?: { attempts?: number };
}

/**
 * "Is this the last attempt", decided here only. BullMQ counts an attempt once it has
 * failed: while a job runs, `attemptsMade` counts the attempts before this one; in a
 * 'failed' event it includes the one that just failed.
 */
export function isLastAttempt(job: AttemptCount, when: 'running' | 'failed'): boolean {
  const made = (job.attemptsMade ?? 0) + (when === 'running' ? 1 : 0);
  return made >= (job.opts?.attempts ?? 1);
}

/**
 * A job's payload for its processor: parsed by its queue's schema, or an error BullMQ will
 * not retry (a payload that fails its schema now fails it on every attempt), so the job
 * goes to the dead letters with the reason at once.
 */
export function payloadOf<Q extends QueueName>(queue: Q, data: unknown): JobPayloads[Q] {
  try {
    return parsePayload(queue, data);
  } catch (err) {
    if (err instanceof InvalidPayloadError) throw new UnrecoverableError(err.message);
    throw err;
  }
}

export function createBatchQueue(s: QueueSettings): Queue<BatchJob> {
  return new Queue<BatchJob>(QUEUE_NAMES.batches, {
    connection: s.connection,
    prefix: s.prefix,
    defaultJobOptions: batchJobOptions(s.attempts),
  });
}

export function createErasureQueue(s: QueueSettings): Queue<ErasureJob> {
  return new Queue<ErasureJob>(QUEUE_NAMES.erasure, {
    connection: s.connection,
    prefix: s.prefix,
    defaultJobOptions: {
      ...batchJobOptions(s.attempts),
      // An erasure job names the account: gone as soon as it is done (its status stays, without the id).
      removeOnComplete: true,
    },
  });
}
