/**
 * API keys by role. A presented key is hashed and compared with every configured key's
 * hash in constant time, so neither timing nor an early exit tells how close a guess was.
 * Keys are never logged: only their public id is.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiKey, KeyRole } from '../schemas/config.js';
import { sendError } from './http-errors.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

export class KeyRing {
  private readonly entries: { key: ApiKey; hash: Buffer }[];

  constructor(keys: readonly ApiKey[]) {
    this.entries = keys.map((key) => ({ key, hash: digest(key.secret) }));
  }

  authenticate(authorization: string | undefined): ApiKey | undefined {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!m?.[1]) return undefined;
    const presented = digest(m[1]);
    let found: ApiKey | undefined;
    for (const e of this.entries) if (timingSafeEqual(presented, e.hash)) found = e.key; // no early exit
    return found;
  }

  /**
   * The request's key, authenticated once: an earlier hook (the rate limiter) may have
   * done it already, and hashing and comparing against every key twice per request is
   * waste on the ingest path. Kept on the request even when a role check refuses it
   * below: the audit trail records who tried.
   */
  identify(req: FastifyRequest): ApiKey | undefined {
    req.apiKey ??= this.authenticate(req.headers.authorization);
    return req.apiKey;
  }

  /** A Fastify preHandler admitting only keys of the given roles. */
  require(...roles: KeyRole[]) {
    return async (req: FastifyRequest, reply: FastifyReply) => {
      const key = this.identify(req);
      if (!key) return sendError(reply, 401, 'unauthorized', 'a valid API key is required: Authorization: Bearer <key>');
      if (!roles.includes(key.role)) {
        return sendError(reply, 403, 'forbidden', `this endpoint needs a ${roles.join(' or ')} key; this key's role is ${key.role}`);
      }
    };
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    apiKey?: ApiKey;
  }
}
