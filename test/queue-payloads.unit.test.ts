/** Every queue's payload is parsed by its schema before a processor trusts it (schemas/queues.ts). */
import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { InvalidPayloadError, parsePayload, QUEUE_NAMES } from '../schemas/queues.js';
import { isLastAttempt, payloadOf } from '../workers/queues.js';

describe('queue payloads', () => {
  it('parses a valid erasure payload and refuses an invalid one, naming each field', () => {
    const ok = { requestId: '00000000-0000-4000-8000-000000000001', account: 'acct-1', requestedAtMs: 1, reason: 'request' };
    expect(parsePayload(QUEUE_NAMES.erasure, ok)).toEqual(ok);
    expect(() => parsePayload(QUEUE_NAMES.erasure, { ...ok, account: '', reason: 'whim' })).toThrow(InvalidPayloadError);
    expect(() => parsePayload(QUEUE_NAMES.erasure, { ...ok, account: '', reason: 'whim' })).toThrow(/^invalid erasure payload: account: .*; reason: /);
  });

  it('turns an invalid payload into an error BullMQ does not retry', () => {
    expect(() => payloadOf(QUEUE_NAMES.batches, { batchId: 'x' })).toThrow(UnrecoverableError);
  });

  it('decides the last attempt the same way while running and after failing', () => {
    const running = { attemptsMade: 2, opts: { attempts: 3 } };
    const failed = { attemptsMade: 3, opts: { attempts: 3 } };
    expect(isLastAttempt(running, 'running')).toBe(true);
    expect(isLastAttempt(failed, 'failed')).toBe(true);
    expect(isLastAttempt({ attemptsMade: 1, opts: { attempts: 3 } }, 'running')).toBe(false);
    expect(isLastAttempt({ attemptsMade: 2, opts: { attempts: 3 } }, 'failed')).toBe(false);
  });
});
