/**
 * The audit trail (policy §4, §8): every call to the billing, privacy and analytics APIs,
 * recorded with who (the key's public id and role, never the key), what (method, route,
 * path), when and the result. Rows are buffered and written in batches; the buffer is
 * bounded, and a failed write is retried with the next flush rather than dropped while
 * there is room. Request bodies are never recorded.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ClickHouseClient } from './clickhouse.js';

/** Routes whose calls are audited: everything but ingest and operations. */
const AUDITED = /^\/v1\/(accounts|usage|analytics|audit|producers|erasures)(\/|$)/;

export interface AuditRow {
  ts: number;
  key_id: string;
  role: string;
  method: string;
  route: string;
  path: string;
  status: number;
  duration_ms: number;
  request_id: string;
}

const MAX_BUFFER = 100_000;
const FLUSH_MS = 1000;

export class AuditRecorder {
  private buffer: AuditRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  dropped = 0;

  constructor(private readonly ch: ClickHouseClient, private readonly log: Logger) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  record(row: AuditRow): void {
    if (this.buffer.length >= MAX_BUFFER) {
      this.dropped++; // counted and logged on flush: the request itself is never failed for it
      return;
    }
    this.buffer.push(row);
  }

  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.buffer.length === 0) return;
    const rows = this.buffer;
    this.buffer = [];
    this.flushing = this.ch
      .insert({ table: 'audit.api_calls', values: rows, format: 'JSONEachRow' })
      .then(() => undefined)
      .catch((err: unknown) => {
        this.log.error({ err, rows: rows.length }, 'audit write failed; kept for the next flush');
        this.buffer = rows.concat(this.buffer).slice(0, MAX_BUFFER);
      })
      .finally(() => {
        this.flushing = undefined;
        if (this.dropped > 0) this.log.error({ dropped: this.dropped }, 'audit buffer was full: rows dropped');
      });
    return this.flushing;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    await this.flush(); // rows that arrived during the first one
  }

  /** Records every audited route's response, including refusals (401/403). */
  register(app: FastifyInstance): void {
    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url ?? '';
      if (!AUDITED.test(route)) return;
      this.record({
        ts: Date.now(),
        key_id: req.apiKey?.id ?? '-',
        role: req.apiKey?.role ?? '-',
        method: req.method,
        route,
        path: req.url.split('?')[0] ?? '',
        status: reply.statusCode,
        duration_ms: Math.round(reply.elapsedTime),
        request_id: req.id,
      });
    });
  }
}
