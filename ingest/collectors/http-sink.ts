/**
 * A SampleSink that sends through a running pipeline's HTTP API (`POST /v1/samples`, the
 * endpoint producers use), for `import --url`: the batch is validated, rate-limited and
 * acknowledged exactly as a producer's would be, whatever Redis key prefix the pipeline
 * runs under.
 *
 * Answers map onto the sink contract: 202 and 400 `no_valid_samples` give per-item
 * rejections (only the first 100 are listed by the API; `rejectedCount` carries the rest);
 * 429 and 503 become a BackpressureError with the server's Retry-After, which the import
 * waits out and retries (the same batch: re-sending is always safe); anything else stops
 * the import with the server's code and message (a refused key, a body too large).
 */
import { BackpressureError, type AcceptResult, type RejectedItem, type SampleSink } from '../accept.js';

/** An answer the import cannot continue after (auth, size, a server error). */
export class HttpSinkError extends Error {
  override name = 'HttpSinkError';
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message);
  }
}

export interface HttpSinkOptions {
  /** The pipeline's base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  /** A producer key. Sent only in the Authorization header, never printed. */
  key: string;
  /** Per request (default 60 s): a hung server stops the import rather than stalling it. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** Retry-After in seconds (delta or HTTP date), at least 1, at most 300. */
export function retryAfterSeconds(header: string | null, nowMs = Date.now()): number {
  if (header === null) return 1;
  const s = /^\d+$/.test(header.trim()) ? Number(header.trim()) : Math.ceil((Date.parse(header) - nowMs) / 1000);
  return Number.isFinite(s) ? Math.min(300, Math.max(1, s)) : 1;
}

export class HttpSink implements SampleSink {
  private readonly endpoint: string;
  constructor(private readonly opts: HttpSinkOptions) {
    this.endpoint = `${opts.url.replace(/\/+$/, '')}/v1/samples`;
  }

  async accept(items: readonly unknown[]): Promise<AcceptResult & { rejectedCount: number }> {
    const doFetch = this.opts.fetch ?? fetch;
    let res: Response;
    try {
      res = await doFetch(this.endpoint, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.opts.key}`, 'content-type': 'application/json' },
        body: JSON.stringify(items),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 60_000),
      });
    } catch (err) {
      throw new HttpSinkError(`cannot reach ${this.endpoint}: ${(err as Error).message}`, undefined);
    }
    const text = await res.text();
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (res.status === 429 || res.status === 503) throw new BackpressureError(retryAfterSeconds(res.headers.get('retry-after')));
    if (res.status === 202) {
      return { accepted: Number(body?.accepted ?? 0), rejected: rejectedOf(body), rejectedCount: Number(body?.rejected_count ?? rejectedOf(body).length), batchId: body?.batch_id };
    }
    if (res.status === 400 && body?.error?.code === 'no_valid_samples') {
      const rejected = rejectedOf(body.error.details);
      return { accepted: 0, rejected, rejectedCount: Number(body.error.details?.rejected_count ?? rejected.length) };
    }
    const code = typeof body?.error?.code === 'string' ? body.error.code : 'unexpected_answer';
    const message = typeof body?.error?.message === 'string' ? body.error.message : text.slice(0, 200);
    const hint =
      res.status === 401 || res.status === 403
        ? ' (--key must be a producer key of that pipeline)'
        : res.status === 413
          ? ' (lower --batch-size)'
          : '';
    throw new HttpSinkError(`${this.endpoint} answered ${res.status} ${code}: ${message}${hint}`, res.status);
  }
}

function rejectedOf(body: any): RejectedItem[] {
  const list = Array.isArray(body?.rejected) ? body.rejected : [];
  return list
    .filter((r: any) => Number.isInteger(r?.index) && Array.isArray(r?.errors))
    .map((r: any) => ({
      index: r.index,
      ...(typeof r.code === 'string' ? { code: r.code } : {}),
      errors: r.errors.map((e: any) => ({ path: String(e?.path ?? ''), message: String(e?.message ?? '') })),
    }));
}
