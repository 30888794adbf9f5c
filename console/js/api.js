// @ts-check
/**
 * The API client: the key lives in this tab's sessionStorage and travels only in the
 * Authorization header, the same way every other client of the API sends it. It is never
 * put in a URL, a cookie or persistent browser storage.
 */

const STORAGE_KEY = 'usage-meter.api-key';

export const session = {
  /** @returns {string | null} */
  key: () => sessionStorage.getItem(STORAGE_KEY),
  /** @param {string} key */
  set: (key) => sessionStorage.setItem(STORAGE_KEY, key),
  clear: () => sessionStorage.removeItem(STORAGE_KEY),
};

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message @param {Headers} [headers] */
  constructor(status, code, message, headers) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = headers?.get('retry-after') ?? undefined;
  }
}

/** A sentence for the person at the screen, from an API error. @param {unknown} err */
export function explain(err) {
  if (!(err instanceof ApiError)) return `The request failed: ${err instanceof Error ? err.message : String(err)}`;
  const retry = err.retryAfter ? ` Try again in ${err.retryAfter} s.` : '';
  switch (err.status) {
    case 401:
      return 'This key was not accepted (401): it is unknown or mistyped. Sign out and sign in with a valid key.';
    case 403:
      return `This key may not see this view (403): ${err.message}.`;
    case 429:
      return `Too many requests for this key right now (429): ${err.message}.${retry}`;
    case 503:
      return `The pipeline is temporarily unavailable (503): ${err.message}.${retry}`;
    default:
      return `${err.status >= 500 ? 'The server failed' : 'The request was refused'} (${err.status} ${err.code}): ${err.message}`;
  }
}

/**
 * A request to the API with the session's key. Returns the Response for non-JSON bodies
 * (downloads); JSON bodies are parsed. Errors become ApiError with the API's message.
 * @param {string} path  starting with /v1/
 * @param {{ accept?: string, raw?: boolean, signal?: AbortSignal, key?: string }} [opts]
 * @returns {Promise<any>}
 */
export async function api(path, opts = {}) {
  const key = opts.key ?? session.key();
  /** @type {Record<string, string>} */
  const headers = { accept: opts.accept ?? 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  const res = await fetch(path, { headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer', ...(opts.signal ? { signal: opts.signal } : {}) });
  if (!res.ok) {
    let code = 'error';
    let message = res.statusText || 'no message';
    try {
      const body = await res.json();
      if (body?.error) ({ code, message } = body.error);
    } catch {
      /* not JSON: the status says enough */
    }
    throw new ApiError(res.status, code, message, res.headers);
  }
  if (opts.raw) return res;
  return res.json();
}

/** A query string from the non-empty values. @param {Record<string, string | undefined>} params */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
