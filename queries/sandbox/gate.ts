/**
 * Admission control for one reader session: at most `concurrency` statements hold the
 * session, at most `queueLimit` wait for it, and a waiter whose caller went away leaves
 * the queue without ever reaching the engine.
 *
 * Why a bound at all: an unbounded queue turns one analyst's burst (or a few abandoned
 * requests) into a wait for everyone behind it, with every waiting request's memory held
 * meanwhile. Beyond the bound the caller is told to come back (429 + Retry-After) instead.
 */

/** The queue is full: try again after `retryAfterS`. */
export class SessionBusy extends Error {
  override name = 'SessionBusy';
  constructor(
    readonly queueLimit: number,
    readonly retryAfterS: number,
  ) {
    super(`the analytics query queue is full (${queueLimit} waiting); retry in ${retryAfterS} s`);
  }
}

/** The caller's signal fired before (or while) its statement ran. */
export class QueryAbandoned extends Error {
  override name = 'QueryAbandoned';
  constructor() {
    super('the client went away before the query finished');
  }
}

export interface GateOptions {
  /** Statements that may hold the session at once (1 for an embedded session). */
  concurrency: number;
  /** Statements that may wait for it; 0 refuses whenever the session is busy. */
  queueLimit: number;
  /** The longest a statement may run: the upper bound of a Retry-After. */
  maxRunS: number;
}

interface Waiter {
  grant: () => void;
  signal: AbortSignal | undefined;
}

export class Gate {
  private running = 0;
  private readonly waiting: Waiter[] = [];
  /** Smoothed run time of recent statements, for an honest Retry-After. */
  private avgRunMs = 1000;

  constructor(readonly opts: GateOptions) {}

  get stats(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  /**
   * Waits for a slot; resolves to its release function. Throws SessionBusy when the queue
   * is full, QueryAbandoned when `signal` fires first (the slot is then never taken).
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new QueryAbandoned());
    if (this.running < this.opts.concurrency && this.waiting.length === 0) return Promise.resolve(this.take());
    if (this.waiting.length >= this.opts.queueLimit) return Promise.reject(new SessionBusy(this.opts.queueLimit, this.retryAfterS()));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new QueryAbandoned());
      };
      const waiter: Waiter = {
        signal,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.take());
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** Runs `fn` holding a slot; the slot is released when `fn` settles. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private take(): () => void {
    this.running++;
    const started = Date.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      this.avgRunMs = 0.7 * this.avgRunMs + 0.3 * (Date.now() - started);
      this.next();
    };
  }

  private next(): void {
    while (this.running < this.opts.concurrency && this.waiting.length > 0) {
      const waiter = this.waiting.shift()!;
      if (waiter.signal?.aborted) continue; // its abort listener has rejected it already
      waiter.grant();
    }
  }

  /** Roughly when a slot frees up for one more waiter; at least 1 s, at most one full run. */
  private retryAfterS(): number {
    const ahead = this.waiting.length + this.running;
    const estimate = (this.avgRunMs * ahead) / this.opts.concurrency / 1000;
    return Math.max(1, Math.min(Math.ceil(this.opts.maxRunS), Math.ceil(estimate)));
  }
}
