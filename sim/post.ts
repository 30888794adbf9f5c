/**
 * Sends simulated batches to `POST {url}/v1/samples` with bounded concurrency, retrying
 * what the ingest asks to retry (503 + Retry-After under back-pressure) and transient
 * failures. Re-sending a batch is always safe: ingest deduplicates by id and natural key,
 * so a retry after a lost 202 bills nothing twice. Used by the `simulate` command, the
 * demo and the benchmark.
 *
 * Nothing is dropped silently: a batch that still fails after its last attempt is listed
 * in `failed` with the reason and, by default, ends the run early (`stopped`); auth or
 * routing errors (401/403/404), which would fail every batch the same way, throw.
 */
import { z } from 'zod';
import type { SampleBatch } from './samples.js';

export interface PostOptions {
  /** Batches in flight at once; default 4. */
  concurrency?: number;
  /** Attempts per batch, first one included; default 10. */
  maxAttempts?: number;
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number;
  /** Upper bound on a server's Retry-After, so a bad header cannot stall a run; default 30 s. */
  maxRetryAfterMs?: number;
  /**
   * Stop taking new batches once one has failed for good (default true): when the server
   * is unreachable, failing every remaining batch the same way only takes longer.
   */
  stopOnFailure?: boolean;
  /** Called once per batch when its outcome is final (for progress bars). */
  onBatch?: (result: BatchResult, batch: SampleBatch) => void;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

export interface BatchResult {
  index: number;
  /** Final HTTP status; 0 when no response was ever received. */
  status: number;
  attempts: number;
  accepted: number;
  rejected: number;
  /** Item indexes the server refused (all of them on a 400). */
  rejectedIndexes: number[];
  /** First error message per refused item, as the server wrote it. */
  errors: string[];
  /** Set when the batch was given up on. */
  failure?: string;
}

export interface PostSummary {
  batches: number;
  sent: number;
  accepted: number;
  rejected: number;
  retries: number;
  duplicatesInjected: number;
  invalidInjected: number;
  /** Valid items the server refused, and injected invalid items it took: both bugs. */
  unexpectedRejections: number;
  unexpectedAcceptances: number;
  failed: Array<{ index: number; status: number; reason: string }>;
  /** True when the run stopped early (a failed batch, or the signal): not everything was sent. */
  stopped: boolean;
  /** A few distinct server error messages, for a human skimming the summary. */
  sampleErrors: string[];
  elapsedMs: number;
}

export class PostError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = 'PostError';
  }
}

const acceptedBody = z.object({
  accepted: z.number().int().nonnegative(),
  rejected: z.array(z.object({ index: z.number().int(), errors: z.array(z.unknown()) })),
});

const FATAL = new Set([401, 403, 404]);
const RETRYABLE = new Set([429, 500, 502, 503, 504]);

export async function postBatches(
  url: string,
  key: string,
  batches: Iterable<SampleBatch> | AsyncIterable<SampleBatch>,
  opts: PostOptions = {},
): Promise<PostSummary> {
  const endpoint = new URL('/v1/samples', url).toString();
  const concurrency = opts.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('concurrency must be a whole number ≥ 1');
  const started = Date.now();
  const summary: PostSummary = {
    batches: 0, sent: 0, accepted: 0, rejected: 0, retries: 0, duplicatesInjected: 0, invalidInjected: 0,
    unexpectedRejections: 0, unexpectedAcceptances: 0, failed: [], stopped: false, sampleErrors: [], elapsedMs: 0,
  };

  // Workers share one iterator: at most `concurrency` batches exist at a time, which is
  // the back-pressure that keeps a 4 M-sample run in constant memory.
  const it = toAsyncIterator(batches);
  let fatal: unknown;
  const worker = async () => {
    try {
      while (fatal === undefined && !summary.stopped) {
        if (opts.signal?.aborted) {
          summary.stopped = true;
          return;
        }
        const next = await it.next();
        if (next.done) return;
        const batch = next.value;
        const result = await sendBatch(endpoint, key, batch, opts);
        record(summary, batch, result);
        opts.onBatch?.(result, batch);
        if (result.failure !== undefined && (opts.stopOnFailure ?? true)) summary.stopped = true;
      }
    } catch (err) {
      fatal ??= err;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  summary.elapsedMs = Date.now() - started;
  if (fatal !== undefined) throw fatal;
  return summary;
}

async function sendBatch(endpoint: string, key: string, batch: SampleBatch, opts: PostOptions): Promise<BatchResult> {
  const doFetch = opts.fetch ?? fetch;
  const maxAttempts = opts.maxAttempts ?? 10;
  const body = JSON.stringify({ samples: batch.items });
  let status = 0;
  let reason = '';
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    let waitMs = backoffMs(attempt);
    try {
      const signals = [AbortSignal.timeout(opts.timeoutMs ?? 30_000), ...(opts.signal ? [opts.signal] : [])];
      const res = await doFetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body,
        signal: AbortSignal.any(signals),
      });
      status = res.status;
      const text = await res.text();
      if (res.status === 202 || res.status === 200) return accepted(batch, res.status, attempt, text);
      if (res.status === 400) return allRejected(batch, attempt, text);
      if (FATAL.has(res.status)) throw new PostError(`${endpoint} answered ${res.status}: ${errorMessage(text)}`, res.status);
      reason = `HTTP ${res.status}: ${errorMessage(text)}`;
      if (!RETRYABLE.has(res.status)) break; // e.g. 413: the same body will fail again
      const after = retryAfterMs(res.headers.get('retry-after'));
      if (after !== undefined) waitMs = Math.min(after, opts.maxRetryAfterMs ?? 30_000);
    } catch (err) {
      if (err instanceof PostError || opts.signal?.aborted) throw err;
      reason = err instanceof Error ? err.message : String(err); // network error or timeout
    }
    if (attempt < maxAttempts) await sleep(waitMs, opts.signal);
  }
  return {
    index: batch.index, status, attempts: maxAttempts, accepted: 0, rejected: 0,
    rejectedIndexes: [], errors: [], failure: reason,
  };
}

function accepted(batch: SampleBatch, status: number, attempts: number, text: string): BatchResult {
  const parsed = acceptedBody.safeParse(safeJson(text));
  if (!parsed.success) {
    return {
      index: batch.index, status, attempts, accepted: 0, rejected: 0, rejectedIndexes: [], errors: [],
      failure: `unexpected ${status} body: ${parsed.error.issues[0]?.message ?? 'unreadable'}`,
    };
  }
  return {
    index: batch.index, status, attempts,
    accepted: parsed.data.accepted,
    rejected: parsed.data.rejected.length,
    rejectedIndexes: parsed.data.rejected.map((r) => r.index),
    errors: parsed.data.rejected.map((r) => describe(r.errors[0])),
  };
}

/**
 * 400 means nothing in the batch was taken: every item counts as rejected. The per-item
 * errors are in `details.rejected` when the body was readable but held no valid sample.
 */
function allRejected(batch: SampleBatch, attempts: number, text: string): BatchResult {
  const details = acceptedBody.shape.rejected.safeParse(
    (safeJson(text) as { error?: { details?: { rejected?: unknown } } } | undefined)?.error?.details?.rejected,
  );
  return {
    index: batch.index, status: 400, attempts, accepted: 0,
    rejected: batch.items.length,
    rejectedIndexes: batch.items.map((_, i) => i),
    errors: details.success ? details.data.map((r) => describe(r.errors[0])) : [errorMessage(text)],
  };
}

function record(s: PostSummary, batch: SampleBatch, r: BatchResult): void {
  s.batches++;
  s.sent += batch.items.length;
  s.retries += r.attempts - 1;
  s.duplicatesInjected += batch.duplicates;
  s.invalidInjected += batch.invalid;
  if (r.failure !== undefined) {
    s.failed.push({ index: r.index, status: r.status, reason: r.failure });
    return;
  }
  s.accepted += r.accepted;
  s.rejected += r.rejected;
  const expected = new Set(batch.invalidIndexes);
  const got = new Set(r.rejectedIndexes);
  for (const i of got) if (!expected.has(i)) s.unexpectedRejections++;
  for (const i of expected) if (!got.has(i)) s.unexpectedAcceptances++;
  for (const e of r.errors) {
    if (s.sampleErrors.length < 5 && !s.sampleErrors.includes(e)) s.sampleErrors.push(e);
  }
}

/** Retry-After is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** Exponential with full jitter, so concurrent workers do not retry in lockstep. */
function backoffMs(attempt: number): number {
  return Math.random() * Math.min(10_000, 200 * 2 ** attempt);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

function toAsyncIterator<T>(src: Iterable<T> | AsyncIterable<T>): { next(): Promise<IteratorResult<T>> } {
  if (Symbol.asyncIterator in src) return src[Symbol.asyncIterator]();
  const it = src[Symbol.iterator]();
  return { next: async () => it.next() };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The server's `{ error: { code, message } }`, else the start of the raw body. */
function errorMessage(text: string): string {
  const body = safeJson(text) as { error?: { code?: unknown; message?: unknown } } | undefined;
  const e = body?.error;
  if (e && typeof e.message === 'string') return typeof e.code === 'string' ? `${e.code}: ${e.message}` : e.message;
  return text.slice(0, 200) || '(empty body)';
}

function describe(err: unknown): string {
  if (err && typeof err === 'object' && 'message' in err) {
    const { path, message } = err as { path?: unknown; message?: unknown };
    return typeof path === 'string' ? `${path}: ${String(message)}` : String(message);
  }
  return typeof err === 'string' ? err : JSON.stringify(err);
}
