/**
 * One logger (pino) for the process. Request logs carry method, route and status only:
 * no headers (API keys), no bodies (customer data), no client addresses.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * `destination`: where the JSON lines go (default stdout). An interactive command whose
 * stdout is for people (the demo) passes a file, so log lines never interleave with its tables.
 */
export function createLogger(level: string, name = 'usage-meter', destination?: DestinationStream): Logger {
  const options = {
    name,
    level,
    redact: { paths: ['req.headers.authorization', '*.password', '*.secret', 'headers.authorization'], censor: '[redacted]' },
    serializers: {
      req: (req: { method?: string; url?: string; routeOptions?: { url?: string } }) => ({
        method: req.method,
        // The route pattern, not the URL: account ids in paths are personal data.
        route: req.routeOptions?.url ?? req.url?.split('?')[0],
      }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

export interface FileLog {
  logger: Logger;
  path: string;
  /** Lines at warn or above written so far: what a summary should point the reader to. */
  warnings(): number;
  /** Writes out what is buffered; call before the process exits. */
  flush(): void;
}

/**
 * A logger writing JSON lines to `path` (created with its directory), counting warnings
 * and errors as they pass, so a command can end with "N warnings in <path>".
 */
export function createFileLogger(level: string, path: string, name = 'usage-meter'): FileLog {
  const file = pino.destination({ dest: path, mkdir: true, sync: true });
  let warnings = 0;
  const counter: DestinationStream = {
    write: () => {
      warnings++;
    },
  };
  const streams = pino.multistream([
    { level: (level === 'silent' ? 'fatal' : level) as pino.Level, stream: file },
    { level: 'warn', stream: counter },
  ]);
  return { logger: createLogger(level, name, streams), path, warnings: () => warnings, flush: () => file.flushSync() };
}
