/**
 * "Redis is down" as an answer, not a crash: ingest cannot make a batch durable without
 * Redis, so the honest reply is 503 with Retry-After (the producer retries; nothing was
 * acknowledged), never a 500. Errors are told apart by class and code, not by message text.
 */
import { RedisUnavailableError } from './redis.js';

/** Seconds a client is told to wait: our connections retry with a backoff capped at 2 s. */
export const REDIS_RETRY_AFTER_S = 5;

export const REDIS_UNAVAILABLE_MESSAGE = 'Redis is unavailable, so nothing can be accepted or counted right now; retry after the Retry-After delay';

/** Socket-level failures: the connection to Redis is refused, broken or unreachable. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);

/**
 * ioredis error classes (matched by name: BullMQ and we may load different copies of
 * ioredis, so `instanceof` would miss): a command given up after the connection's retries
 * (MaxRetriesPerRequestError), or every cluster node failing.
 */
const UNAVAILABLE_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError', 'RedisUnavailableError']);

export function isRedisUnavailable(err: unknown): boolean {
  if (err instanceof RedisUnavailableError) return true;
  if (typeof err !== 'object' || err === null) return false;
  const { name, code } = err as { name?: unknown; code?: unknown };
  return (typeof name === 'string' && UNAVAILABLE_NAMES.has(name)) || (typeof code === 'string' && CONNECTION_CODES.has(code));
}

/** A connection's own view: anything but `ready` means its commands cannot be served now. */
export function connectionDown(client: { status: string }): boolean {
  return client.status !== 'ready';
}
