/**
 * The logger the collectors take, injected so they never choose where logs go. pino's
 * `logger.info(obj, msg)` fits it as is. Fields must never hold secrets or raw bodies.
 */
export interface CollectorLogger {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

/** A logger's failure must not break the path it observes. */
export function safeLog(logger: CollectorLogger, level: keyof CollectorLogger, fields: Record<string, unknown>, msg: string): void {
  try {
    logger[level](fields, msg);
  } catch {
    // ignored on purpose
  }
}
