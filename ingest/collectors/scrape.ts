/**
 * One HTTP scrape: fetch an exposition with a deadline and a size cap, and decode it as
 * strict UTF-8. Every way it can fail becomes a `ScrapeError` with a code, so the collector
 * reports and counts failures by kind without reading message text.
 */

export type ScrapeErrorCode =
  | 'timeout'
  | 'aborted'
  | 'network'
  | 'http_status'
  | 'content_type'
  | 'too_large'
  | 'not_utf8'
  | 'parse'
  | 'mapping'
  | 'internal';

export class ScrapeError extends Error {
  override name = 'ScrapeError';
  constructor(
    readonly code: ScrapeErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface FetchOptions {
  timeoutMs: number;
  maxBytes: number;
  /** Aborts the scrape when the collector stops. */
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

// Ask for the classic text format: exporters that also speak OpenMetrics or protobuf would
// otherwise pick one of those.
const ACCEPT = 'text/plain;version=0.0.4;q=1,text/plain;q=0.5,*/*;q=0.1';
const ACCEPTED_TYPES = ['text/plain', 'application/openmetrics-text'];

export async function fetchExposition(url: string, opts: FetchOptions): Promise<string> {
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  const doFetch = opts.fetch ?? fetch;
  const abortReason = (): ScrapeError =>
    timeout.aborted
      ? new ScrapeError('timeout', `no complete answer within ${opts.timeoutMs} ms`)
      : new ScrapeError('aborted', 'scrape aborted: the collector is stopping');

  let res: Response;
  try {
    // No redirects: an exporter never needs one, and following it would scrape a host the
    // target list does not name.
    res = await doFetch(url, { signal, headers: { accept: ACCEPT }, redirect: 'error' });
  } catch (err) {
    if (signal.aborted) throw abortReason();
    throw new ScrapeError('network', `cannot reach the target: ${networkReason(err)}`);
  }
  try {
    if (res.status !== 200) throw new ScrapeError('http_status', `answered HTTP ${res.status}`);
    const type = (res.headers.get('content-type') ?? 'text/plain').split(';')[0]!.trim().toLowerCase();
    if (!ACCEPTED_TYPES.includes(type)) {
      throw new ScrapeError('content_type', `answered ${type.slice(0, 64)}, not the Prometheus text format`);
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > opts.maxBytes) throw new ScrapeError('too_large', `answer of ${declared} bytes exceeds ${opts.maxBytes}`);
    const bytes = await readCapped(res, opts.maxBytes);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new ScrapeError('not_utf8', 'answer is not valid UTF-8');
    }
  } catch (err) {
    // Release the connection whatever went wrong; an unread body would pin a socket.
    await res.body?.cancel().catch(() => undefined);
    if (err instanceof ScrapeError) throw err;
    if (signal.aborted) throw abortReason();
    throw new ScrapeError('network', `answer broke off: ${networkReason(err)}`);
  }
}

async function readCapped(res: Response, maxBytes: number): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array();
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new ScrapeError('too_large', `answer exceeds ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** undici hides the system error (ECONNREFUSED, ENOTFOUND…) in `cause`; that code is the useful part. */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message.slice(0, 200);
  return err instanceof Error ? err.message.slice(0, 200) : 'unknown error';
}
