/** The one error shape of the API: `{ error: { code, message, details? } }`. */
import type { FastifyReply } from 'fastify';

export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function errorBody(code: string, message: string, details?: unknown): ApiErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

export function sendError(reply: FastifyReply, status: number, code: string, message: string, details?: unknown) {
  return reply.code(status).send(errorBody(code, message, details));
}
