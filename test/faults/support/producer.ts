/**
 * A producer as the fault scenarios need one: it POSTs each batch until it gets a 202,
 * retrying through refused connections, resets, timeouts and 5xx (as agents do while the
 * pipeline restarts), and records exactly which samples were acknowledged. Optionally it
 * times out early on purpose and re-sends batches it already had answered (a lost 202).
 */
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SampleBatch } from '../../../sim/index.js';
import type { SentSample } from '../../support/oracle.js';

export interface ProducerOptions {
  /** Base URL of the pipeline (read on every attempt). */
  url: () => string;
  key: string;
  concurrency?: number;
  /** Per-attempt timeout; may depend on the attempt number (1 = first). Default 15 s. */
  timeoutMs?: (attempt: number) => number;
  /** Share of acknowledged batches sent again, as by a producer that never saw its 202. */
  resendRate?: number;
  /** Give up on a batch after this long (the test then fails). Default 90 s. */
  batchDeadlineMs?: number;
  /** Pause between two batches of one lane, so a stream outlasts the faults put into it. */
  paceMs?: number;
  /** Called after each 202. */
  onAck?: () => void;
}

export interface ProducerStats {
  batches: number;
  /** Sample items in every POST that reached the server, re-sends and retries included. */
  sentItems: number;
  /** Requests that reached the server (a connection was made). */
  requests: number;
  /** Attempts whose connection was refused (the server was down): nothing sent. */
  refused: number;
  /** Requests that got no answer: connection reset, or timed out. */
  noAnswer: number;
  timeouts: number;
  /** Answers other than 202 (5xx, 503 back-pressure). */
  errorAnswers: number;
  /** Items accepted in 202 answers (a re-sent batch counts again). */
  acknowledgedItems: number;
  /** Batches deliberately sent again after their 202. */
  resends: number;
  /** Items the server refused as invalid, and whether that matched the injected ones. */
  rejectedItems: number;
  unexpectedRejections: number;
}

export class Producer {
  /** Every acknowledged valid sample, once per 202 (duplicates and re-sends included). */
  readonly acknowledged: SentSample[] = [];
  readonly stats: ProducerStats = {
    batches: 0, sentItems: 0, requests: 0, refused: 0, noAnswer: 0, timeouts: 0, errorAnswers: 0,
    acknowledgedItems: 0, resends: 0, rejectedItems: 0, unexpectedRejections: 0,
  };
  private stopped = false;
  /** Set once every batch has been acknowledged (or the run failed). */
  done = false;

  constructor(private readonly o: ProducerOptions) {}

  async run(batches: readonly SampleBatch[]): Promise<void> {
    let next = 0;
    const lane = async () => {
      while (!this.stopped && next < batches.length) {
        const batch = batches[next++]!;
        await this.deliver(batch);
        this.stats.batches++;
        if ((this.o.resendRate ?? 0) > 0 && Math.random() < this.o.resendRate!) {
          this.stats.resends++;
          await this.deliver(batch);
        }
        if (this.o.paceMs) await sleep(this.o.paceMs);
      }
    };
    try {
      await Promise.all(Array.from({ length: this.o.concurrency ?? 2 }, lane));
    } finally {
      this.done = true;
    }
  }

  /** Resolves once `n` more batches have been acknowledged, or the run is over. */
  async acks(n: number): Promise<void> {
    const target = this.stats.batches + n;
    while (this.stats.batches < target && !this.done) await sleep(5);
  }

  /** Stops retrying and taking batches (after a failed test: nothing keeps running). */
  stop(): void {
    this.stopped = true;
  }

  private async deliver(batch: SampleBatch): Promise<void> {
    const body = JSON.stringify({ samples: batch.items });
    const deadline = Date.now() + (this.o.batchDeadlineMs ?? 90_000);
    for (let attempt = 1; ; attempt++) {
      if (this.stopped) return;
      if (Date.now() > deadline) throw new Error(`batch ${batch.index} not acknowledged after ${attempt - 1} attempts`);
      const timeout = this.o.timeoutMs?.(attempt) ?? 15_000;
      try {
        const res = await post(`${this.o.url()}/v1/samples`, this.o.key, body, timeout, () => {
          // Counted once a connection exists: a refused connection sent nothing.
          this.stats.requests++;
          this.stats.sentItems += batch.items.length;
        });
        if (res.status === 202) {
          this.acknowledge(batch, JSON.parse(res.text) as { accepted: number; rejected: { index: number }[] });
          return;
        }
        if (res.status < 500) throw new Error(`batch ${batch.index}: unexpected ${res.status} ${res.text.slice(0, 300)}`);
        this.stats.errorAnswers++;
      } catch (err) {
        if ((err as Error).message.startsWith(`batch ${batch.index}:`)) throw err;
        if ((err as { code?: string }).code === 'ECONNREFUSED') this.stats.refused++;
        else this.stats.noAnswer++;
        if (err instanceof TimeoutError) this.stats.timeouts++;
      }
      await sleep(Math.min(1000, 25 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random()));
    }
  }

  private acknowledge(batch: SampleBatch, body: { accepted: number; rejected: { index: number }[] }): void {
    const rejected = new Set(body.rejected.map((r) => r.index));
    const injected = new Set(batch.invalidIndexes);
    for (const i of rejected) if (!injected.has(i)) this.stats.unexpectedRejections++;
    for (const i of injected) if (!rejected.has(i)) this.stats.unexpectedRejections++;
    batch.items.forEach((item, i) => {
      if (!rejected.has(i)) this.acknowledged.push(item as SentSample);
    });
    this.stats.rejectedItems += rejected.size;
    this.stats.acknowledgedItems += body.accepted;
    this.o.onAck?.();
  }
}

class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/**
 * One POST on its own connection (no keep-alive pool), destroyed on timeout: an abandoned
 * request really goes away, as when an agent gives up, instead of idling in a pool.
 */
function post(url: string, key: string, body: string, timeoutMs: number, onConnect: () => void): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'content-length': Buffer.byteLength(body) },
    });
    req.once('socket', (socket) => socket.once('connect', onConnect));
    const timer = setTimeout(() => req.destroy(new TimeoutError(`no answer in ${timeoutMs} ms`)), timeoutMs);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}
